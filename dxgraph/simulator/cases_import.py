"""Import 3MDBench's published case formats into a dxgraph case folder.

3MDBench ships its cases in two shapes:

(a) a JSON object keyed by case id, each value with ``path`` (the image, relative to the
    JSON file or its image folders), ``general_complaint``, ``complaints``, ``diagnosis``
    and ``personality``;
(b) parquet with columns ``image`` (bytes, or a Hugging Face image struct with ``bytes``),
    ``general_complaint``, ``complaints``, ``diagnosis``, ``personality`` (and optionally
    ``id``).

``import_3mdbench`` writes ``cases.yaml`` and ``images/`` into an output folder, which
``load_cases(out_dir)`` then reads like any other case folder. The ``complaints`` text is
split into sentences, one atomic fact each, so the rule patient can disclose them one at a
time; each fact's category is guessed from keywords (a guess, recorded as such only in
that it is never used for scoring). Imported cases are ``synthetic: false``.

The importer refuses rather than guesses: an unknown ``personality`` (not one of the
temperaments ``load_personas`` knows) is an error naming the case, not kept as-is or
mapped to ``neutral`` (either would quietly mislabel the set); a 0-byte image is an error
naming the case and file. Every row and option is checked before anything is written, so a
refused import leaves no half-written folder behind.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from dxgraph.errors import InputError
from dxgraph.simulator import labels as label_table
from dxgraph.simulator.cases import assign_splits, load_cases
from dxgraph.types import Case, Fact

__all__ = ["import_3mdbench", "complaint_facts", "guess_category"]

_COLUMNS = ("general_complaint", "complaints", "diagnosis", "personality")
_CATEGORY_WORDS = [
    ("medication", r"\b(tablet|pill|medicin|medication|drug|antibiotic|taking|prescri)"),
    ("treatment", r"\b(tried|cream|ointment|lotion|applied|helped|help|treat|wash|remed)"),
    ("onset", r"\b(ago|since|started|start|began|begin|appeared|first noticed|for (a|the) (few|past|last)|"
              r"days?|weeks?|months?|years?|yesterday|overnight)\b"),
    ("exposure", r"\b(contact|touched|new (soap|detergent|product)|travel|pets?|garden|sun|gym|pool|sick)"),
    ("history", r"\b(before|history|previously|in the past|family|mother|father|childhood|as a child|diagnosed)"),
    ("location", r"\b(on my|on the|around|behind|between|under|scalp|face|arm|leg|hand|foot|feet|back|"
                 r"chest|neck|eye|lip|mouth|gum|tooth|teeth|nail|toe|finger)"),
]


def guess_category(sentence: str) -> str:
    """A fact category from keywords, first match wins; ``symptom`` otherwise."""
    low = sentence.lower()
    for category, pattern in _CATEGORY_WORDS:
        if re.search(pattern, low):
            return category
    return "symptom"


def complaint_facts(text: str) -> list[Fact]:
    """Split free complaint text into sentence facts ``f1``, ``f2``... with guessed categories."""
    parts = re.split(r"(?<=[.!?;])\s+|\n+|(?<=\w)\s*[•·]\s*", text or "")
    sentences = [p.strip(" -•\t") for p in parts if len(p.strip(" -•\t")) > 2]
    return [Fact(id=f"f{i + 1}", category=guess_category(s), text=s) for i, s in enumerate(sentences)]


def _image_suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] in (b"RIFF",) and data[8:12] == b"WEBP":
        return ".webp"
    return ".bin"


def _safe_id(raw: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(raw)).strip("-.")
    if not text:
        raise InputError(f"case id {raw!r} has no usable characters")
    return text


def _known_temperaments() -> list[str]:
    from dxgraph.simulator.personas import load_personas

    return list(load_personas())


def _personality(cid: str, row: dict, where: str, known: list[str]) -> str | None:
    value = str(row.get("personality") or "").strip().lower() or None
    if value is not None and value not in known:
        raise InputError(f"{where}: case {cid!r}: field 'personality': unknown temperament {value!r}; "
                         f"use one of {', '.join(known)} (or add a persona file), or leave it empty")
    return value


def _record(cid: str, row: dict, where: str, known: list[str]) -> dict:
    missing = [c for c in ("general_complaint", "diagnosis") if not row.get(c)]
    if missing:
        raise InputError(f"{where}: case {cid!r}: field {missing[0]!r}: missing")
    label = label_table.normalize_label(str(row["diagnosis"]))
    if label is None:
        hint = label_table.suggest_label(str(row["diagnosis"]))
        tip = f" (did you mean {hint!r}?)" if hint else ""
        raise InputError(f"{where}: case {cid!r}: field 'diagnosis': unknown label {row['diagnosis']!r}{tip}")
    personality = _personality(cid, row, where, known)
    return {
        "id": cid,
        "chief_complaint": str(row["general_complaint"]).strip(),
        "facts": [f.model_dump() for f in complaint_facts(str(row.get("complaints") or ""))],
        "diagnosis": label,
        "personality": personality,
        "source": "3mdbench",
        "synthetic": False,
    }


# An image to write once every row is valid: (file name under images/, source path or bytes).
_Pending = tuple[str, "Path | bytes"]


def _from_json(path: Path, known: list[str]) -> tuple[list[dict], list[_Pending]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 JSON file (byte {exc.object[exc.start]:#04x} at offset "
                         f"{exc.start}); give 3MDBench's JSON as UTF-8 text") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object keyed by case id, got {type(data).__name__}")
    out, pending = [], []
    for raw_id, row in data.items():
        cid = _safe_id(raw_id)
        if not isinstance(row, dict):
            raise InputError(f"{path}: case {cid!r}: expected an object with {', '.join(_COLUMNS)}")
        rec = _record(cid, row, str(path), known)
        if row.get("path"):
            src = Path(str(row["path"]))
            src = src if src.is_absolute() else path.parent / src
            if not src.is_file():
                raise InputError(f"{path}: case {cid!r}: field 'path': image {str(row['path'])!r} not found "
                                 f"(looked for {str(src)!r})")
            if src.stat().st_size == 0:
                raise InputError(f"{path}: case {cid!r}: field 'path': image {str(src)!r} is empty (0 bytes); "
                                 "replace the file or drop the case's 'path'")
            name = f"{cid}{src.suffix.lower()}"
            pending.append((name, src))
            rec["images"] = [{"path": f"images/{name}", "modality": "photo"}]
        out.append(rec)
    return out, pending


def _from_parquet(path: Path, known: list[str]) -> tuple[list[dict], list[_Pending]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types
        raise InputError(f"{path}: not a readable parquet file: {exc}") from None
    missing = [c for c in _COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]!r}; 3MDBench parquet has "
                         f"image, {', '.join(_COLUMNS)}")
    out, pending = [], []
    for i, row in enumerate(table.to_pylist()):
        cid = _safe_id(row.get("id") or f"3mdb-{i + 1:04d}")
        rec = _record(cid, row, str(path), known)
        img = row.get("image")
        data = img.get("bytes") if isinstance(img, dict) else img
        if data is not None and len(data) == 0:
            raise InputError(f"{path}: case {cid!r}: column 'image': empty image (0 bytes); "
                             "fix the row or set its image to null")
        if data:
            name = f"{cid}{_image_suffix(data)}"
            pending.append((name, data))
            rec["images"] = [{"path": f"images/{name}", "modality": "photo"}]
        out.append(rec)
    return out, pending


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file; give a folder to write cases.yaml and images/ into")


def _make_out_dir(out: Path) -> Path:
    _check_out(out)
    images = out / "images"
    try:
        images.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {str(out)!r} cannot be created: {exc.strerror or exc}; "
                         "choose a folder you can write") from None
    return images


def _inputs(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".parquet"))
        if files:
            return files
        raise InputError(f"no 3MDBench .json or .parquet files in {str(path)!r}")
    raise InputError(f"{str(path)!r} does not exist; give a 3MDBench .json, .parquet or a folder of them")


def import_3mdbench(path: str | Path, out_dir: str | Path, *, train_fraction: float = 0.5) -> list[Case]:
    """Convert 3MDBench cases to a dxgraph case folder and return the loaded cases.

    Args:
        path: a 3MDBench JSON file, a parquet file, or a folder holding them.
        out_dir: where ``cases.yaml`` and ``images/`` are written (created if missing).
        train_fraction: share of each label's cases put in the train split (by id order),
            so the rule doctor has a train split to learn from.

    Raises:
        InputError: a bad option or output folder, a missing column or field, an unknown label
            or temperament, a missing or empty image; raised before anything is written.
    """
    if not 0.0 <= train_fraction <= 1.0:
        raise InputError(f"--train-fraction must be between 0 and 1, got {train_fraction!r}")
    out = Path(out_dir)
    _check_out(out)
    known = _known_temperaments()
    records: list[dict] = []
    pending: list[_Pending] = []
    for src in _inputs(Path(path)):
        recs, imgs = _from_parquet(src, known) if src.suffix == ".parquet" else _from_json(src, known)
        records += recs
        pending += imgs
    ids = [r["id"] for r in records]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InputError(f"case id {dupes[0]!r} appears more than once in {str(path)!r}")
    # The split is assigned on validated cases so its rule lives in one place.
    split = {c.id: c.split for c in assign_splits(
        [Case.model_validate({**r, "images": []}) for r in records], train_fraction)}
    for r in records:
        r["split"] = split[r["id"]]
    header = ("# Imported from 3MDBench by `dxgraph cases import-3mdbench`; not synthetic.\n"
              "# facts are the sentences of the original 'complaints' text.\n")
    body = yaml.safe_dump({"description": f"3MDBench cases imported from {Path(path).name}", "cases": records},
                          sort_keys=False, allow_unicode=True, width=100)
    images = _make_out_dir(out)
    try:
        for name, source in pending:
            if isinstance(source, Path):
                shutil.copyfile(source, images / name)
            else:
                (images / name).write_bytes(source)
        (out / "cases.yaml").write_text(header + body, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {str(out)!r}: cannot write: {exc.strerror or exc}") from None
    return load_cases(out)
