"""Case sets for the dialogue benchmark: the bundled synthetic vignettes and user folders.

A case file is YAML or JSON: either a list of cases or a mapping with ``cases`` (the list),
optional ``defaults`` (fields every case of the file gets unless it sets them) and an
optional ``description``. Each case is a ``dxgraph.types.Case``. Loading checks what a
benchmark run would otherwise trip over halfway through: unknown keys, unknown diagnosis
labels (against the label table, with a "did you mean"), duplicate case or fact ids, and
image files that do not exist. Every error is one line naming the file, the case id and
the field, e.g. ``cases/acne.yaml: case 'acne-02': field 'diagnosis': unknown label 'akne'
(did you mean 'acne'?)``.

Diagnosis and differential labels are stored canonical (``"atopic dermatitis"`` is loaded as
``"eczema"``); image paths are resolved relative to the case file and stored absolute.

The bundled set (``source="bundled"``) is the 34 3MDBench labels, four or more synthetic
vignettes each, written for this project (no patient data). The imaging cases tied to the
built-in workflows are a separate source, ``"bundled-imaging"`` (``"bundled-all"`` is both),
so they never enter the 34-label accuracy metric by accident.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dxgraph.errors import ConfigError, InputError
from dxgraph.simulator import labels as label_table
from dxgraph.types import Case
from dxgraph.yamlfile import load_checked

__all__ = [
    "BUNDLED_SOURCES",
    "SAMPLE_IMAGES",
    "SPLITS",
    "bundled_dir",
    "load_cases",
    "load_case_file",
    "get_case",
    "split_cases",
    "assign_splits",
    "leaked_labels",
]

BUNDLED_SOURCES = ("bundled", "bundled-imaging", "bundled-all")
SPLITS = ("train", "test")
# Images that ship with installed packages; dxgraph.tools.imaging.SAMPLES is the source of
# truth and resolves them (this tuple is only the fallback if that module cannot load).
SAMPLE_IMAGES = ("retina", "microaneurysms", "ct", "mr", "nifti")


def _sample_names() -> tuple[str, ...]:
    try:
        from dxgraph.tools.imaging import SAMPLES
    except ImportError:
        return SAMPLE_IMAGES
    return tuple(SAMPLES)
_FILE_KEYS = {"cases", "defaults", "description"}
_SUFFIXES = (".yaml", ".yml", ".json")


def bundled_dir(kind: str = "dialogue") -> Path:
    """Where the bundled case files live: ``dialogue`` (34 labels) or ``imaging``."""
    root = Path(str(resources.files("dxgraph.simulator").joinpath("data/cases")))
    return root if kind == "dialogue" else root / "imaging"


def _display(path: Path) -> str:
    """A short name for messages: relative to the bundled data dir or the working dir."""
    data = bundled_dir().parent
    for base in (data, Path.cwd()):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{_display(path)}: cannot read the case file: {exc.strerror}") from None
    try:
        # The C loader is as safe as safe_load (no object construction) and ~7x faster.
        # Bounded like workflows and settings: depth, alias expansion and node count are
        # checked before the document is built (a 449-byte alias bomb is one line, not a hang).
        return json.loads(text) if path.suffix == ".json" else load_checked(text, _display(path))[0]
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{_display(path)}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{_display(path)}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def _label(value: Any, where: str, field: str) -> str:
    canon = label_table.normalize_label(value) if isinstance(value, str) else None
    if canon is None:
        hint = label_table.suggest_label(value) if isinstance(value, str) else None
        tip = f" (did you mean {hint!r}?)" if hint else "; see dxgraph/simulator/data/labels.yaml for known labels"
        raise InputError(f"{where}: field {field!r}: unknown label {value!r}{tip}")
    return canon


def _image_path(raw: str, base: Path, where: str, field: str) -> str:
    if raw.startswith("sample:"):
        name = raw.split(":", 1)[1]
        names = _sample_names()
        if name not in names:
            raise InputError(f"{where}: field {field!r}: unknown sample image {raw!r}; "
                             f"use one of {', '.join('sample:' + s for s in names)}")
        return raw
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"{where}: field {field!r}: image {raw!r} not found (looked for {str(path)!r})")
    return str(path.resolve())


def _case(raw: Any, i: int, path: Path, defaults: dict) -> Case:
    name = _display(path)
    if not isinstance(raw, dict):
        raise InputError(f"{name}: case #{i + 1}: expected a mapping of fields, got {type(raw).__name__}")
    cid = raw.get("id")
    where = f"{name}: case {cid!r}" if isinstance(cid, str) and cid else f"{name}: case #{i + 1}"
    data = {**defaults, **raw}
    for field in ("id", "chief_complaint", "diagnosis"):
        if data.get(field) in (None, ""):
            raise InputError(f"{where}: field {field!r}: missing (every case needs id, chief_complaint, diagnosis)")
    data["diagnosis"] = _label(data["diagnosis"], where, "diagnosis")
    diff = data.get("differential") or []
    if not isinstance(diff, list):
        raise InputError(f"{where}: field 'differential': expected a list of labels")
    data["differential"] = [_label(d, where, f"differential[{j}]") for j, d in enumerate(diff)]
    images = data.get("images") or []
    if not isinstance(images, list):
        raise InputError(f"{where}: field 'images': expected a list of {{path: ...}} entries")
    fixed = []
    for j, img in enumerate(images):
        img = {"path": img} if isinstance(img, str) else img
        if not isinstance(img, dict) or not isinstance(img.get("path"), str):
            raise InputError(f"{where}: field 'images[{j}].path': missing; give a file path or sample:NAME")
        fixed.append({**img, "path": _image_path(img["path"], path.parent, where, f"images[{j}].path")})
    data["images"] = fixed
    try:
        case = Case.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise InputError(f"{where}: field {field!r}: {err['msg']}") from None
    seen: set[str] = set()
    for fact in case.facts:
        if fact.id in seen:
            raise InputError(f"{where}: field 'facts': duplicate fact id {fact.id!r}")
        seen.add(fact.id)
    return case


def load_case_file(path: str | Path) -> list[Case]:
    """Load and validate one YAML or JSON case file (see the module docstring for the shape).

    Results are cached per (path, modification time, size); cases are frozen, so sharing
    them is safe, and an edited file is read again (an image deleted after the first load
    is not noticed until the case file changes).
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(f"{_display(path)}: cannot read the case file: {exc.strerror}") from None
    return list(_load_case_file(str(path.resolve()), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=256)
def _load_case_file(resolved: str, _mtime_ns: int, _size: int) -> tuple[Case, ...]:
    return tuple(_parse_case_file(Path(resolved)))


def _parse_case_file(path: Path) -> list[Case]:
    data = _read(path)
    name = _display(path)
    defaults: dict = {}
    if isinstance(data, dict):
        unknown = sorted(set(data) - _FILE_KEYS)
        if unknown:
            raise InputError(f"{name}: unknown top-level key {unknown[0]!r}; expected 'cases' (and optionally "
                             f"'defaults', 'description')")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise InputError(f"{name}: field 'defaults': expected a mapping")
        data = data.get("cases")
    if not isinstance(data, list):
        raise InputError(f"{name}: expected a list of cases (or a mapping with 'cases'), got {type(data).__name__}")
    return [_case(raw, i, path, defaults) for i, raw in enumerate(data)]


def _files(source: str | Path) -> list[Path]:
    if source in ("bundled", "bundled-imaging", "bundled-all"):
        dirs = {"bundled": [bundled_dir()], "bundled-imaging": [bundled_dir("imaging")],
                "bundled-all": [bundled_dir(), bundled_dir("imaging")]}[str(source)]
        return [p for d in dirs for p in sorted(d.iterdir()) if p.suffix in _SUFFIXES]
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix in _SUFFIXES]
        if not files:
            raise InputError(f"no case files (*.yaml, *.yml, *.json) in {str(path)!r}")
        return files
    raise InputError(f"case source {str(source)!r} is neither {', '.join(map(repr, BUNDLED_SOURCES))}, "
                     f"a case file nor a folder of case files")


def load_cases(source: str | Path = "bundled", split: str | None = None) -> list[Case]:
    """Load a case set, checked, in file order.

    Args:
        source: ``"bundled"`` (34-label dialogue set), ``"bundled-imaging"``,
            ``"bundled-all"``, a case file, or a folder of case files (top level only).
        split: ``"train"``, ``"test"``, or ``None``/``"all"`` for every case.

    Raises:
        InputError: one line naming the file, the case and the field that is wrong.
    """
    if split not in (None, "all", *SPLITS):
        raise InputError(f"unknown split {split!r}; use 'train', 'test' or 'all'")
    cases: list[Case] = []
    origin: dict[str, Path] = {}
    for path in _files(source):
        for case in load_case_file(path):
            if case.id in origin:
                raise InputError(f"{_display(path)}: case {case.id!r}: field 'id': duplicate id, "
                                 f"already defined in {_display(origin[case.id])}")
            origin[case.id] = path
            cases.append(case)
    if split in SPLITS:
        cases = [c for c in cases if c.split == split]
    return cases


def get_case(case_id: str, source: str | Path = "bundled") -> Case:
    """One case by id (from any split); an unknown id suggests the closest ones."""
    cases = load_cases(source) if source != "bundled" else load_cases("bundled-all")
    for case in cases:
        if case.id == case_id:
            return case
    close = difflib.get_close_matches(case_id, [c.id for c in cases], n=3)
    tip = f"; did you mean {', '.join(map(repr, close))}?" if close else "; list them with `dxgraph cases list`"
    raise InputError(f"no case {case_id!r} in {str(source)!r}{tip}")


def split_cases(cases: Iterable[Case]) -> tuple[list[Case], list[Case]]:
    """``(train, test)`` by each case's ``split`` field, order kept."""
    cases = list(cases)
    return [c for c in cases if c.split == "train"], [c for c in cases if c.split == "test"]


def _natural(case_id: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", case_id)]


def assign_splits(cases: Sequence[Case], train_fraction: float = 0.5) -> list[Case]:
    """Cases with ``split`` set deterministically, per label, by id order.

    Within each label the first ``round(n * train_fraction)`` cases in natural id order
    are train, the rest test; a label with two or more cases keeps at least one of each.
    No randomness: the same ids always give the same split.
    """
    if not 0.0 <= train_fraction <= 1.0:
        raise InputError(f"train_fraction must be between 0 and 1, got {train_fraction!r}")
    by_label: dict[str, list[Case]] = {}
    for case in cases:
        by_label.setdefault(case.diagnosis, []).append(case)
    split: dict[str, str] = {}
    for group in by_label.values():
        group = sorted(group, key=lambda c: _natural(c.id))
        n_train = round(len(group) * train_fraction)
        if len(group) >= 2 and 0.0 < train_fraction < 1.0:
            n_train = min(max(n_train, 1), len(group) - 1)
        for k, case in enumerate(group):
            split[case.id] = "train" if k < n_train else "test"
    return [c.model_copy(update={"split": split[c.id]}) for c in cases]


def leaked_labels(case: Case) -> list[str]:
    """Labels the agent-facing text names that give the answer away (should be empty).

    The chief complaint and the facts reach the patient (and through it the doctor), and
    the visual findings reach the doctor directly under the image strategies; a mention in
    any of them of the case's own label (or a synonym) lets a doctor read off the answer.
    """
    own = label_table.normalize_label(case.diagnosis) or case.diagnosis
    texts = [case.chief_complaint, *(f.text for f in case.facts), case.visual_findings or ""]
    return [lab for t in texts for lab in label_table.find_labels(t) if lab == own]

