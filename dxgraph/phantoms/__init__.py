"""Labelled synthetic phantom sets for the built-in workflows.

Real labelled images (REFUGE2, MIMIC-CXR, ACDC) cannot ship with the project, so the
workflows are measured on phantoms whose true measurements are known exactly: fundus
discs and cups with a known vertical cup-to-disc ratio, fundus photographs with a known
number of microaneurysms, chest radiographs with a known cardiothoracic ratio, and ED/ES
cardiac volumes with a known ejection fraction. Every set is labelled synthetic (a
``README.txt`` beside the images, a PNG text chunk, a NIfTI description).

Each case draws everything from its own generator seeded by ``(seed, index)``, so a set is
reproducible byte for byte. Seeds 0-999 are for development; the reported benchmark uses
seeds of 10000 and above, which were never looked at while the segmenters were tuned.

Two families: ``a`` (the default; what the segmenters were tuned on) and, for the fundus
workflows, ``b`` (``fundus_b.py``: other disc shapes and tilts, peripapillary atrophy,
pigmentation and tessellation, another vessel pattern, lesion mimics), never used in tuning.
Labels of both come from ``THRESHOLDS`` applied to the drawn truth.
"""

from __future__ import annotations

import csv
import math
import operator
import tempfile
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

from dxgraph.errors import InputError
from dxgraph.phantoms.cardiac import render_lv_pair
from dxgraph.phantoms.chest import render_chest
from dxgraph.phantoms.fundus import render_fundus
from dxgraph.phantoms.fundus_b import render_fundus_b

__all__ = ["FAMILIES", "GENERATOR_VERSION", "THRESHOLDS", "TRUTH_COLUMNS", "Threshold", "WORKFLOWS", "generate"]

GENERATOR_VERSION = "1.0"

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


class Threshold(NamedTuple):
    """The outcome rule of a workflow on one truth column: positive iff ``column op value``."""

    column: str
    op: str
    value: float

    def positive(self, measured: float) -> bool:
        return bool(_OPS[self.op](measured, self.value))

    def __str__(self) -> str:
        return f"{self.column} {self.op} {self.value:g}"


# These must agree with the rules in dxgraph/workflows/builtin/*.yaml.
THRESHOLDS: dict[str, Threshold] = {
    "glaucoma": Threshold("vcdr", ">=", 0.6),
    "diabetic_retinopathy": Threshold("ma_count", ">=", 1),
    "cardiomegaly": Threshold("ctr", ">", 0.5),
    "hfref": Threshold("ef", "<=", 40.0),
}

TRUTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "glaucoma": ("vcdr", "rdr"),
    "diabetic_retinopathy": ("ma_count",),
    "cardiomegaly": ("ctr",),
    "hfref": ("edv_ml", "esv_ml", "ef"),
}

WORKFLOWS = tuple(THRESHOLDS)

# Which workflows each phantom family draws; family "b" was never used in tuning.
FAMILIES: dict[str, tuple[str, ...]] = {"a": WORKFLOWS, "b": ("glaucoma", "diabetic_retinopathy")}

# Sampling ranges of the truth per class: wide, and both touching the threshold.
_RANGES = {
    "glaucoma": ((0.30, 0.5999), (0.60, 0.85)),
    "cardiomegaly": ((0.36, 0.50), (0.5001, 0.65)),
    "hfref": ((40.01, 70.0), (15.0, 40.0)),
}

_SYNTHETIC_NOTE = "SYNTHETIC PHANTOM (dxgraph {version}); not a patient image"


def _save_png(path: Path, array: np.ndarray, seed: int) -> None:
    info = PngInfo()
    info.add_text("Comment", _SYNTHETIC_NOTE.format(version=GENERATOR_VERSION) + f"; seed {seed}")
    PILImage.fromarray(array).save(path, pnginfo=info)


def _save_nifti(path: Path, volume: np.ndarray, spacing: tuple[float, ...]) -> None:
    # ``volume`` is (D, H, W) with spacing (sd, sh, sw). NIfTI's voxel axes run (i, j, k) with
    # the slice axis last, which is how the loader reads them back into (D, H, W).
    sd, sh, sw = spacing
    img = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine=np.diag([sw, sh, sd, 1.0]))
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = f"dxgraph synthetic phantom {GENERATOR_VERSION}".encode()
    nib.save(img, path)  # nibabel gzips with mtime 0, so the bytes are reproducible


def _case_b(workflow: str, rng: np.random.Generator, label: int, scale: float, stem: Path, seed: int) -> dict:
    size = int(round(rng.integers(448, 641) * scale))
    if workflow == "glaucoma":
        lo, hi = _RANGES["glaucoma"][label]
        img, truth = render_fundus_b(rng, size, float(rng.uniform(lo, hi)))
        row = {"vcdr": truth.vcdr, "rdr": truth.rdr}
    else:  # every DR eye of family b, positive or negative, carries lesion mimics
        count = int(rng.integers(1, 16)) if label else 0
        img, truth = render_fundus_b(rng, size, float(rng.uniform(0.3, 0.5)), ma_count=count, mimics=True)
        row = {"ma_count": truth.ma_count}
    _save_png(stem.with_suffix(".png"), img, seed)
    return {"image": stem.with_suffix(".png").name} | row


def _case(workflow: str, rng: np.random.Generator, label: int, scale: float, stem: Path, seed: int) -> dict:
    lo, hi = _RANGES.get(workflow, ((0, 0), (0, 0)))[label]
    if workflow == "glaucoma":
        size = int(round(rng.integers(448, 641) * scale))
        img, truth = render_fundus(rng, size, float(rng.uniform(lo, hi)))
        _save_png(stem.with_suffix(".png"), img, seed)
        return {"image": stem.with_suffix(".png").name, "vcdr": truth.vcdr, "rdr": truth.rdr}
    if workflow == "diabetic_retinopathy":
        size = int(round(rng.integers(448, 641) * scale))
        count = int(rng.integers(1, 16)) if label else 0
        distractor = bool(label and rng.random() < 0.3)
        img, truth = render_fundus(rng, size, float(rng.uniform(0.3, 0.5)), ma_count=count, distractor=distractor)
        _save_png(stem.with_suffix(".png"), img, seed)
        return {"image": stem.with_suffix(".png").name, "ma_count": truth.ma_count}
    if workflow == "cardiomegaly":
        h = int(round(rng.integers(448, 577) * scale))
        w = int(round(rng.integers(400, 545) * scale))
        img, truth = render_chest(rng, h, w, float(rng.uniform(lo, hi)))
        _save_png(stem.with_suffix(".png"), img, seed)
        return {"image": stem.with_suffix(".png").name, "ctr": truth["ctr"]}
    ed, es, spacing, truth = render_lv_pair(rng, float(rng.uniform(lo, hi)))
    names = {}
    for phase, vol in (("ed", ed), ("es", es)):
        path = stem.parent / f"{stem.name}_{phase}.nii.gz"
        _save_nifti(path, vol, spacing)
        names[f"image_{phase}"] = path.name
    return names | truth


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def _prepare(out: Path, force: bool) -> None:
    """Make ``out`` ready for a new set: refuse a file, an unwritable folder or (without ``force``) an old set.

    With ``force`` only what an old set wrote goes: the files its ``labels.csv`` names, the
    csv and the README. Anything else the user keeps in the folder stays.
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"{str(out)!r} is a file, not a folder: give -o/--out a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise InputError(f"cannot write phantoms to {str(out)!r} ({exc.strerror or exc}): "
                         "give -o/--out a folder you can write to") from None
    old = out / "labels.csv"
    if not old.exists():
        return
    if not force:
        raise InputError(f"{str(out)!r} already holds a phantom set (labels.csv); pass --force to replace it, "
                         "or choose another -o/--out folder")
    try:
        with old.open(newline="") as fh:
            names = [v for row in csv.DictReader(fh) for k, v in row.items() if k and k.startswith("image") and v]
    except (OSError, UnicodeDecodeError, csv.Error):
        names = []
    for name in [*names, "labels.csv", "README.txt"]:
        target = out / name
        if target.parent.resolve() == out.resolve() and target.is_file():  # never a path outside the set
            target.unlink()


def generate(workflow: str, n: int, seed: int, out_dir: Path, *, scale: float = 1.0, force: bool = False,
             family: str = "a") -> Path:
    """Write ``n`` labelled phantom cases for ``workflow`` and return the path of ``labels.csv``.

    Args:
        workflow: one of ``glaucoma``, ``diabetic_retinopathy``, ``cardiomegaly``, ``hfref``.
        n: number of cases; half of them (rounded up) are positive.
        seed: the set's seed. Use 0-999 while developing; 10000 and above are held out.
        out_dir: directory to write into (created if missing).
        scale: multiplies the 2D image sizes (tests use smaller images to run fast).
        force: replace a set already in ``out_dir`` (its listed files, labels.csv and README.txt).
        family: ``a`` (tuned on) or ``b`` (never used in tuning; fundus workflows only).

    Returns:
        The path of ``labels.csv``: ``id``, image path column(s) relative to the csv,
        ``label`` (1 positive, 0 negative by ``THRESHOLDS``), then the truth columns.

    Raises:
        InputError: an unknown workflow, a non-positive ``n``, a bad scale, an ``out_dir``
            that is a file or cannot be written, or one holding a set without ``force``, or a
            family that does not draw the workflow.
    """
    if workflow not in THRESHOLDS:
        raise InputError(f"no phantom generator for workflow {workflow!r}; choose one of {', '.join(WORKFLOWS)}")
    if family not in FAMILIES:
        raise InputError(f"unknown phantom family {family!r}; choose one of {', '.join(FAMILIES)}")
    if workflow not in FAMILIES[family]:
        raise InputError(f"phantom family {family!r} draws only {', '.join(FAMILIES[family])}, not {workflow!r}; "
                         "use --family a")
    if n < 1:
        raise InputError(f"n must be at least 1, got {n!r}")
    if not (0.25 <= scale <= 4) or not math.isfinite(scale):
        raise InputError(f"scale must be between 0.25 and 4, got {scale!r}")
    out = Path(out_dir)
    _prepare(out, force)
    labels = np.random.default_rng([seed, 2**31]).permutation([1] * ((n + 1) // 2) + [0] * (n // 2))
    image_cols = ("image_ed", "image_es") if workflow == "hfref" else ("image",)
    columns = ("id", *image_cols, "label", *TRUTH_COLUMNS[workflow])
    rule = THRESHOLDS[workflow]
    rows = []
    for i in range(n):
        if family == "a":
            case_id = f"{workflow}_{seed}_{i:04d}"
            row = _case(workflow, np.random.default_rng([seed, i]), int(labels[i]), scale, out / case_id, seed)
        else:  # its own stream, so family b never repeats a family-a draw of the same seed
            case_id = f"{workflow}_{family}_{seed}_{i:04d}"
            row = _case_b(workflow, np.random.default_rng([seed, i, 0xB]), int(labels[i]), scale, out / case_id, seed)
        label = int(rule.positive(row[rule.column]))
        if label != labels[i]:  # pragma: no cover - the sampling ranges guarantee agreement
            raise AssertionError(f"case {case_id!r}: truth {row[rule.column]!r} does not give label {labels[i]}")
        rows.append({"id": case_id, "label": label} | row)
    csv_path = out / "labels.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format(row[c]) for c in columns])
    positives = sum(r["label"] for r in rows)
    (out / "README.txt").write_text(
        f"SYNTHETIC PHANTOMS - not patient data.\n\n"
        f"Generated by dxgraph.phantoms, generator version {GENERATOR_VERSION}.\n"
        f"workflow: {workflow}\nfamily: {family}\nseed: {seed}\ncases: {n} ({positives} positive)\nscale: {scale:g}\n"
        f"outcome rule: positive iff {rule}\n"
        f"labels.csv columns: {', '.join(columns)}\n\n"
        "Every image was drawn from simple shapes with known measurements; the truth columns "
        "come from those shapes. Use them to test and benchmark the workflow's tools, never "
        "to claim clinical performance.\n"
    )
    return csv_path
