"""Accuracy and speed of the classical segmenters on held-out phantom sets.

Generates ``--n`` phantoms per workflow with a held-out seed (>= 10000: never looked at
while the segmenters were tuned), runs segmenter + measurement on each, and prints a
markdown table: MAE of each measurement against the truth, balanced accuracy of the
outcome from the thresholded measurement, and mean segmentation time per image (one
process, one thread per image).

    python benchmarks/segmentation_accuracy.py --n 200 --seed 10000

Measurements use dxgraph.tools.measurement when it is importable, otherwise the same
definitions computed here (vertical extents, widest row widths, voxel volumes, components).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image as PILImage
from scipy import ndimage as ndi

from dxgraph.tools.data import Image, Mask
from dxgraph.phantoms import THRESHOLDS, generate
from dxgraph.tools.segmentation import (
    segment_heart_thorax,
    segment_left_ventricle,
    segment_microaneurysms,
    segment_optic_disc_cup,
)

try:  # the measurement tools, when they exist, are what the workflows use
    from dxgraph.tools import measurement as _m
except ImportError:  # pragma: no cover - depends on the other module's progress
    _m = None


def _scalar(value, name: str) -> float:
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        value = getattr(value, name, value[0])
    return float(value)


def _vext(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(1))
    return int(rows[-1] - rows[0] + 1)


def _widest(mask: np.ndarray) -> int:
    return max(int(np.ptp(np.flatnonzero(r))) + 1 for r in mask if r.any())


def vcdr(disc: Mask, cup: Mask) -> float:
    if _m is not None and hasattr(_m, "vertical_cup_to_disc_ratio"):
        return _scalar(_m.vertical_cup_to_disc_ratio(disc, cup), "vcdr")
    return _vext(cup.array) / _vext(disc.array)


def ctr(heart: Mask, thorax: Mask) -> float:
    if _m is not None and hasattr(_m, "cardiothoracic_ratio"):
        return _scalar(_m.cardiothoracic_ratio(heart, thorax), "ctr")
    return _widest(heart.array) / _widest(thorax.array)


def volume_ml(mask: Mask) -> float:
    if _m is not None and hasattr(_m, "mask_volume"):
        return _scalar(_m.mask_volume(mask), "volume_ml")
    return float(mask.array.sum() * np.prod(mask.spacing) / 1000)


def count(mask: Mask) -> float:
    if _m is not None and hasattr(_m, "lesion_count"):
        return _scalar(_m.lesion_count(mask), "count")
    return float(ndi.label(mask.array, structure=np.ones((3, 3)))[1])


def _png(path: Path) -> Image:
    return Image(np.asarray(PILImage.open(path), dtype=np.float32), source=str(path))


def _nii(path: Path) -> Image:
    nii = nib.load(path)
    return Image(np.asarray(nii.dataobj, dtype=np.float32), spacing=tuple(float(z) for z in nii.header.get_zooms()),
                 source=str(path), meta={"layout": "volume"})


def _run_case(workflow: str, row: dict[str, str], root: Path) -> tuple[dict[str, float], float]:
    if workflow == "glaucoma":
        img = _png(root / row["image"])
        t = time.perf_counter()
        out = segment_optic_disc_cup(img)
        measured = {"vcdr": vcdr(out.disc, out.cup)}
        elapsed = time.perf_counter() - t
        if _m is not None and hasattr(_m, "rim_to_disc_ratio"):
            measured["rdr"] = _scalar(_m.rim_to_disc_ratio(out.disc, out.cup), "rdr")
        return measured, elapsed
    if workflow == "diabetic_retinopathy":
        img = _png(root / row["image"])
        t = time.perf_counter()
        mask = segment_microaneurysms(img)
        return {"ma_count": count(mask)}, time.perf_counter() - t
    if workflow == "cardiomegaly":
        img = _png(root / row["image"])
        t = time.perf_counter()
        out = segment_heart_thorax(img)
        return {"ctr": ctr(out.heart, out.thorax)}, time.perf_counter() - t
    ed, es = _nii(root / row["image_ed"]), _nii(root / row["image_es"])
    t = time.perf_counter()
    edv, esv = volume_ml(segment_left_ventricle(ed)), volume_ml(segment_left_ventricle(es))
    elapsed = (time.perf_counter() - t) / 2
    return {"edv_ml": edv, "esv_ml": esv, "ef": 100 * (edv - esv) / edv if edv > 0 else float("nan")}, elapsed


def _balanced_accuracy(truth: list[int], pred: list[int]) -> float:
    t, p = np.array(truth), np.array(pred)
    return float(np.mean([np.mean(p[t == c] == c) for c in (0, 1) if (t == c).any()]))


def evaluate(workflow: str, n: int, seed: int, root: Path) -> list[str]:
    csv_path = generate(workflow, n, seed, root / workflow)
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    rule = THRESHOLDS[workflow]
    errors: dict[str, list[float]] = {}
    truth, pred, times, failures = [], [], [], 0
    for row in rows:
        truth.append(int(row["label"]))
        try:
            measured, elapsed = _run_case(workflow, row, csv_path.parent)
        except Exception as exc:  # a failed case counts as a wrong, negative call
            failures += 1
            print(f"  {row['id']}: {type(exc).__name__}: {exc}", file=sys.stderr)
            pred.append(0)
            continue
        times.append(elapsed)
        for key, value in measured.items():
            errors.setdefault(key, []).append(abs(value - float(row[key])))
        pred.append(int(rule.positive(measured[rule.column])))
    lines = []
    for key, errs in errors.items():
        primary = key == rule.column
        lines.append(
            f"| {workflow} | {key} | {len(rows)} | {np.mean(errs):.4f} | "
            + (f"{_balanced_accuracy(truth, pred):.3f} | {1000 * np.mean(times):.0f} | {failures} |" if primary
               else "| | |")
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="phantoms per workflow")
    parser.add_argument("--seed", type=int, default=10000, help="held-out seed (>= 10000)")
    parser.add_argument("--workflows", nargs="*", default=list(THRESHOLDS))
    args = parser.parse_args(argv)
    if args.seed < 10000:
        print(f"note: seed {args.seed} is a development seed; reported numbers use seeds >= 10000", file=sys.stderr)
    print(f"Held-out phantoms, seed {args.seed}, {args.n} per workflow (synthetic data).\n")
    print("| workflow | measurement | n | MAE | balanced accuracy | ms / image | failures |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dxgraph-seg-bench-") as tmp:
        for workflow in args.workflows:
            for line in evaluate(workflow, args.n, args.seed, Path(tmp)):
                print(line, flush=True)


if __name__ == "__main__":
    main()
