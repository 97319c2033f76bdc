"""Refusals before a benchmark run starts: photos that do not open, and evaluated cases that
are in the rule doctor's knowledge base (a rule doctor scores 1.000 on its own base)."""

from __future__ import annotations

from typing import Any

from dxgraph.bench.grid import BenchConfig, GridSample
from dxgraph.errors import InputError

__all__ = ["check_images", "check_overlap", "train_overlap"]


def check_images(grid: list[GridSample]) -> None:
    """Refuse a run whose doctor would be shown a photo that does not open.

    Loading a case only checks that its image files exist; a corrupt or mislabelled photo
    would otherwise fail (or be silently dropped) in every consultation that shows it, and
    ``retry`` could never fix it. Text-only samples (``dialogue``) never see the photo, so
    they do not need it to open. Each distinct file is decoded once, before the run starts.
    """
    seen: set[str] = set()
    for sample in grid:
        if sample.strategy == "dialogue":
            continue
        for j, ref in enumerate(sample.case.images):
            if ref.path in seen:
                continue
            from dxgraph.tools.imaging import load

            try:
                load(ref.path)
            except InputError as exc:
                raise InputError(f"case {sample.case.id!r}: field 'images[{j}].path': {exc}") from None
            seen.add(ref.path)


def train_overlap(grid: list[GridSample], harness: Any) -> list[str]:
    """Evaluated case ids that are in a doctor's knowledge base (same id or same complaint)."""
    known = getattr(harness, "knowledge_cases", None)
    kb = known() if known is not None else []
    if not kb:
        return []
    ids = {c.id for c in kb}
    complaints = {c.chief_complaint.strip() for c in kb}
    return sorted({s.case.id for s in grid if s.case.id in ids or s.case.chief_complaint.strip() in complaints})


def check_overlap(config: BenchConfig, grid: list[GridSample], harness: Any) -> list[str]:
    overlap = train_overlap(grid, harness)
    if overlap and not config.allow_train_overlap:
        where = "--kb-cases" if config.kb_cases else "the train split"
        n_cases = len({s.case.id for s in grid})
        raise InputError(f"{len(overlap)} of the {n_cases} evaluated cases (first: {overlap[0]!r}) are in the rule "
                         f"doctor's knowledge base ({where}), so its accuracy there is not a result; run on "
                         "--split test or with another --kb-cases, or pass --allow-train-overlap to run anyway "
                         "(the run and its reports are then marked 'evaluated on training cases')")
    return overlap
