"""The run manifest: what a reviewer needs to reproduce a benchmark run, stored with it.

Written once when a run is created (in the run row's config) and printed in every report:
dxgraph's version and git commit (when run from a checkout), the model spec of every
role, strategies, temperaments, protocol, split, a hash of the evaluated cases' content,
the hints' source and hashes,
seeds, turn limit, label table version, and start/end time.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from dxgraph.types import Case

__all__ = ["build_manifest", "case_set_hash", "git_commit"]


def git_commit() -> str | None:
    """The commit of the checkout dxgraph runs from (``+dirty`` with local edits), else None."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def case_set_hash(cases: list[Case]) -> str:
    """sha256 of the evaluated cases' full content (ids, texts, labels), in id order."""
    h = hashlib.sha256()
    for case in sorted(cases, key=lambda c: c.id):
        h.update(json.dumps(case.model_dump(mode="json"), sort_keys=True).encode("utf-8"))
    return h.hexdigest()


def _hints(spec: str | None, hints: dict[str, list[str]] | None) -> dict[str, Any] | None:
    """A CSV's path and sha256; a classifier's folder, weights' hash and the computed hints' sha256."""
    if not spec:
        return None
    from dxgraph.bench.classifier_hints import hints_record, is_classifier_spec

    if is_classifier_spec(spec):
        return hints_record(spec, hints or {})
    from dxgraph.bench.protocol import file_sha256

    return {"file": spec, "sha256": file_sha256(spec)}


def build_manifest(config: Any, cases: list[Case], temperaments: list[str], *, started_at: str,
                   protocol: str = "dxgraph", hints: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The manifest of a run about to start (``config`` is its ``BenchConfig``; ``hints`` the
    classifier hints it computed, if any)."""
    import dxgraph
    from dxgraph.simulator import labels as label_table

    return {
        "dxgraph_version": dxgraph.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "protocol": protocol,
        "models": {"doctor": list(config.doctors), "patient": config.patient, "judge": config.judge},
        "strategies": list(config.strategies),
        "temperaments": list(temperaments),
        "cases": config.cases,
        "split": config.split or "all",
        "knowledge_base": f"{config.knowledge_source()} (train split)" if "rules" in config.doctors else None,
        "hints": _hints(getattr(config, "hints", None), hints),
        "n_cases": len(cases),
        "case_set_sha256": case_set_hash(cases),
        "seeds": {"case_draw": config.seed if config.limit is not None else None, "patient": 0, "bootstrap": None},
        "limit": config.limit,
        "max_turns": config.max_turns,
        "label_table_version": label_table.LABEL_TABLE_VERSION,
        "started_at": started_at,
    }
