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


def _record(cid: str, row: dict, where: str) -> dict:
    missing = [c for c in ("general_complaint", "diagnosis") if not row.get(c)]
    if missing:
        raise InputError(f"{where}: case {cid!r}: field {missing[0]!r}: missing")
    label = label_table.normalize_label(str(row["diagnosis"]))
    if label is None:
        hint = label_table.suggest_label(str(row["diagnosis"]))
        tip = f" (did you mean {hint!r}?)" if hint else ""
        raise InputError(f"{where}: case {cid!r}: field 'diagnosis': unknown label {row['diagnosis']!r}{tip}")
    personality = str(row.get("personality") or "").strip().lower() or None
    return {
        "id": cid,
        "chief_complaint": str(row["general_complaint"]).strip(),
        "facts": [f.model_dump() for f in complaint_facts(str(row.get("complaints") or ""))],
        "diagnosis": label,
        "personality": personality,
        "source": "3mdbench",
        "synthetic": False,
    }


def _from_json(path: Path, images: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object keyed by case id, got {type(data).__name__}")
    out = []
    for raw_id, row in data.items():
        cid = _safe_id(raw_id)
        if not isinstance(row, dict):
            raise InputError(f"{path}: case {cid!r}: expected an object with {', '.join(_COLUMNS)}")
        rec = _record(cid, row, str(path))
        if row.get("path"):
            src = Path(str(row["path"]))
            src = src if src.is_absolute() else path.parent / src
            if not src.is_file():
                raise InputError(f"{path}: case {cid!r}: field 'path': image {str(row['path'])!r} not found "
                                 f"(looked for {str(src)!r})")
            dest = images / f"{cid}{src.suffix.lower()}"
            shutil.copyfile(src, dest)
            rec["images"] = [{"path": f"images/{dest.name}", "modality": "photo"}]
        out.append(rec)
    return out


def _from_parquet(path: Path, images: Path) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types
        raise InputError(f"{path}: not a readable parquet file: {exc}") from None
    missing = [c for c in _COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]!r}; 3MDBench parquet has "
                         f"image, {', '.join(_COLUMNS)}")
    out = []
    for i, row in enumerate(table.to_pylist()):
        cid = _safe_id(row.get("id") or f"3mdb-{i + 1:04d}")
        rec = _record(cid, row, str(path))
        img = row.get("image")
        data = img.get("bytes") if isinstance(img, dict) else img
        if data:
            dest = images / f"{cid}{_image_suffix(data)}"
            dest.write_bytes(data)
            rec["images"] = [{"path": f"images/{dest.name}", "modality": "photo"}]
        out.append(rec)
    return out


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
        InputError: a missing column or field, an unknown label, a missing image.
    """
    out = Path(out_dir)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    for src in _inputs(Path(path)):
        records += _from_parquet(src, images) if src.suffix == ".parquet" else _from_json(src, images)
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
    (out / "cases.yaml").write_text(header + body, encoding="utf-8")
    return load_cases(out)
