"""The run manifest: what a reviewer needs to reproduce a benchmark run, stored with it.

Written once when a run is created (in the run row's config) and printed in every report:
dxgraph's version and git commit (when run from a checkout), the model spec of every
role, strategies, temperaments, protocol, split, a hash of the evaluated cases' content,
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


def _sha(path: str) -> str:
    from dxgraph.bench.protocol import file_sha256

    return file_sha256(path)


def build_manifest(config: Any, cases: list[Case], temperaments: list[str], *, started_at: str,
                   protocol: str = "dxgraph") -> dict[str, Any]:
    """The manifest of a run about to start (``config`` is its ``BenchConfig``)."""
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
        "hints": ({"file": config.hints, "sha256": _sha(config.hints)} if getattr(config, "hints", None) else None),
        "n_cases": len(cases),
        "case_set_sha256": case_set_hash(cases),
        "seeds": {"case_draw": config.seed if config.limit is not None else None, "patient": 0, "bootstrap": None},
        "limit": config.limit,
        "max_turns": config.max_turns,
        "label_table_version": label_table.LABEL_TABLE_VERSION,
        "started_at": started_at,
    }
