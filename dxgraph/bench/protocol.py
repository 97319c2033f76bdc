"""3MDBench's protocol and classifier hints: what ``bench run --protocol 3mdbench`` changes.

Under ``dxgraph`` (the default) every test case is played under every temperament, so
temperament effects are paired. 3MDBench plays each of its cases once, with the personality
the case was assigned, on all of its cases, and compares doctor *strategies*: no dialogue,
text dialogue, dialogue with the photo, and dialogue with a classifier's top-3 labels in
context. ``--protocol 3mdbench`` does the same on cases imported with
``dxgraph cases import-3mdbench``:

* every case of ``--cases`` is evaluated, whatever its ``split``;
* a case's temperament is its own ``personality`` (a case without one is refused);
* the rule doctor learns from another case set (``--kb-cases``, by default the bundled
  train split), and the usual overlap refusal applies between that base and the cases;
* the default strategies are ``single``, ``dialogue``, ``dialogue+image``, plus
  ``dialogue+hints`` when ``--hints`` gives a classifier's ranked labels per case: a CSV
  (``read_hints``), or ``classifier:PATH``, a local image classifier run on each evaluated
  case's pictures (``bench.classifier_hints``); ``load_hints`` dispatches.

Hints are classifier output, not truth: they are read from the user's file or computed from
pixels, never from a case's label, so scrambling the labels leaves every doctor output unchanged.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from dxgraph.errors import InputError
from dxgraph.simulator import labels as label_table
from dxgraph.types import Case

__all__ = ["HINT_STRATEGY", "HINTS_USED", "default_strategies", "check_options", "own_temperaments",
           "read_hints", "load_hints", "file_sha256"]

HINT_STRATEGY = "dialogue+hints"
HINTS_USED = 3  # 3MDBench put a CNN's top-3 labels in the doctor's context
_3MDBENCH_STRATEGIES = ["single", "dialogue", "dialogue+image"]


def default_strategies(protocol: str, hints: str | None) -> list[str]:
    """The strategies a run plays when ``--strategy`` is not given."""
    if protocol != "3mdbench":
        return ["dialogue", HINT_STRATEGY] if hints else ["dialogue"]
    return _3MDBENCH_STRATEGIES + ([HINT_STRATEGY] if hints else [])


def check_options(protocol: str, *, split: str | None, temperaments: list[str] | None,
                  strategies: list[str], hints: str | None) -> None:
    """Refuse option combinations the protocol has no meaning for (one line, exit 2)."""
    if protocol == "3mdbench":
        if temperaments:
            raise InputError("--temperaments has no meaning under --protocol 3mdbench: each case is played once "
                             "with its own 'personality'; drop --temperaments")
        if split not in (None, "all"):
            raise InputError("--split has no meaning under --protocol 3mdbench: every case of --cases is a test "
                             "case; drop --split (the rule doctor learns from --kb-cases)")
    if HINT_STRATEGY in strategies and not hints:
        raise InputError(f"strategy {HINT_STRATEGY!r} needs --hints FILE.csv (case_id, then a classifier's "
                         "labels, most likely first) or --hints classifier:PATH (a local image classifier)")
    if hints and HINT_STRATEGY not in strategies:
        raise InputError(f"--hints is used only by strategy {HINT_STRATEGY!r}; add it to --strategy or drop --hints")


def own_temperaments(cases: list[Case], known: list[str]) -> dict[str, str]:
    """Each case's own ``personality`` as its temperament; a case without one is refused."""
    out = {}
    for case in cases:
        if not case.personality:
            raise InputError(f"case {case.id!r} has no 'personality', and --protocol 3mdbench plays each case with "
                             "its own; import 3MDBench's cases with `dxgraph cases import-3mdbench`, or run "
                             "without --protocol")
        if case.personality not in known:
            raise InputError(f"case {case.id!r}: personality {case.personality!r} is not a known temperament "
                             f"({', '.join(known)})")
        out[case.id] = case.personality
    return out


def file_sha256(path: str, flag: str = "--hints") -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError(f"{flag} {path!r} cannot be read: {exc.strerror or exc}") from None


def read_hints(path: str, cases: list[Case]) -> dict[str, list[str]]:
    """``case_id -> [label, ...]`` (top ``HINTS_USED``, canonical labels) from a CSV.

    Each row is a case id, then labels most likely first (a header row starting with
    ``case_id`` and ``#`` comment lines are skipped). A case not in ``cases`` or a label not in
    the label table is an error naming ``FILE:LINE``; so is a case listed twice.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--hints {path!r} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    known = {c.id for c in cases}
    out: dict[str, list[str]] = {}
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not cells or not cells[0] or cells[0].startswith("#") or (line_no == 1 and cells[0] == "case_id"):
            continue
        cid, raw = cells[0], [c for c in cells[1:] if c]
        where = f"{path}:{line_no}"
        if cid not in known:
            raise InputError(f"--hints {where}: case {cid!r} is not in the case set (--cases); hints must name "
                             "the evaluated cases' ids")
        if cid in out:
            raise InputError(f"--hints {where}: case {cid!r} is listed twice")
        if not raw:
            raise InputError(f"--hints {where}: case {cid!r} has no labels; give case_id,label1,label2,...")
        labels = []
        for item in raw:
            label = label_table.normalize_label(item)
            if label is None:
                hint = label_table.suggest_label(item)
                raise InputError(f"--hints {where}: unknown label {item!r}"
                                 + (f" (did you mean {hint!r}?)" if hint else ""))
            labels.append(label)
        out[cid] = list(dict.fromkeys(labels))[:HINTS_USED]
    if not out:
        raise InputError(f"--hints {path!r} names no cases; write case_id,label1,label2,... one case a line")
    return out


def load_hints(spec: str, cases: list[Case]) -> dict[str, list[str]]:
    """``--hints``: a CSV file, or ``classifier:PATH`` scored on ``cases``' own pictures."""
    from dxgraph.bench.classifier_hints import classifier_hints, classifier_path, is_classifier_spec

    if is_classifier_spec(spec):
        return classifier_hints(classifier_path(spec), cases)[0]
    return read_hints(spec, cases)


def check_hint_coverage(hints: dict[str, list[str]], case_ids: list[str], path: str) -> None:
    """Every case a ``dialogue+hints`` sample plays needs its row."""
    missing = [c for c in case_ids if c not in hints]
    if missing:
        raise InputError(f"--hints {path!r} has no row for case {missing[0]!r} ({len(missing)} evaluated case(s) "
                         "without hints); every case of a dialogue+hints run needs the classifier's labels")
