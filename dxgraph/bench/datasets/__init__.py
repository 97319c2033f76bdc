"""Loaders for public data sets in the layout their publishers distribute.

Each loader turns a downloaded folder into evaluation rows (``id``, ``images`` bound to the
workflow's inputs, ``label``, ``truth``), with the truth derived from the data set's own
masks or grades as its papers do. Nothing here reaches an agent: rows go to
``dxgraph.bench.evaluate`` which reads labels and truths only after the workflow has run.

``dxgraph evaluate -w WORKFLOW --dataset FORMAT:PATH``; ``dxgraph datasets list``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dxgraph.errors import InputError

__all__ = ["DatasetFormat", "FORMATS", "load_dataset", "parse_spec"]


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    title: str
    workflow: str
    truth: str
    layout: str
    source: str
    load: Callable[[Path], list[dict[str, Any]]]


def _formats() -> dict[str, DatasetFormat]:
    from dxgraph.bench.datasets import acdc, idrid, jsrt, refuge

    return {f.name: f for f in (refuge.FORMAT, idrid.FORMAT, jsrt.FORMAT, acdc.FORMAT)}


FORMATS: dict[str, DatasetFormat] = {}


def formats() -> dict[str, DatasetFormat]:
    if not FORMATS:
        FORMATS.update(_formats())
    return FORMATS


def parse_spec(spec: str) -> tuple[DatasetFormat, Path]:
    """``FORMAT:PATH`` -> the format and the folder; a clear error for anything else."""
    name, sep, path = spec.partition(":")
    known = formats()
    if not sep or not path:
        raise InputError(f"--dataset takes FORMAT:PATH (e.g. refuge:/data/REFUGE), got {spec!r}; "
                         f"formats: {', '.join(known)}")
    if name.lower() not in known:
        raise InputError(f"unknown dataset format {name!r}; known: {', '.join(known)} ('dxgraph datasets list')")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InputError(f"dataset folder {str(folder)!r} does not exist")
    return known[name.lower()], folder


def load_dataset(spec: str, workflow_id: str, input_names: list[str]) -> list[dict[str, Any]]:
    """Rows for ``evaluate`` from a ``FORMAT:PATH`` spec, checked against the workflow's inputs."""
    fmt, folder = parse_spec(spec)
    rows = fmt.load(folder)
    if not rows:
        raise InputError(f"no cases found in {str(folder)!r} for format {fmt.name!r}; expected layout: {fmt.layout}")
    given = set(rows[0]["images"])
    if given != set(input_names):
        raise InputError(f"format {fmt.name!r} gives images {sorted(given)}, but workflow {workflow_id!r} takes "
                         f"{sorted(input_names)}: use it with workflow {fmt.workflow!r}")
    return rows
