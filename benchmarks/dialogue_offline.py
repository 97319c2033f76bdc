"""Offline dialogue benchmark: the bundled test split x 5 temperaments, rule agents only.

Targets (issue 4, issue 12): the whole grid in <= 30 s on 2 cores; the rule doctor's top-1 accuracy
with the rule patient well above chance (>= 50 %), never reading the case label.

    python benchmarks/dialogue_offline.py [--concurrency 4] [--reps 1000]

Prints markdown tables; the store is a throwaway SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dxgraph.bench.fidelity import fidelity_markdown  # noqa: E402
from dxgraph.bench.grid import BenchConfig  # noqa: E402
from dxgraph.bench.report import build_report  # noqa: E402
from dxgraph.bench.runner import run_benchmark  # noqa: E402
from dxgraph.store import Store  # noqa: E402


def _row(name: str, v: dict) -> str:
    return f"| {name} | {v['value']:.3f} | [{v['ci_low']:.3f}, {v['ci_high']:.3f}] | {v['n']} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        config = BenchConfig(run_id="offline", split=args.split, concurrency=args.concurrency)
        start = time.perf_counter()
        summary = asyncio.run(run_benchmark(config, store, progress=False))
        wall = time.perf_counter() - start
        rep = build_report(store, "offline", reps=args.reps)
    m = rep["metrics"]
    print(f"## Offline dialogue benchmark (rule doctor, rule patient, rule judge)\n")
    print(f"- cases: bundled split {args.split!r}, synthetic: {rep['synthetic']}; {rep['samples_total']} samples "
          f"({rep['metrics']['overall']['top1_accuracy']['n']} done, {rep['samples_failed']} failed), "
          f"status {summary.status}")
    print(f"- wall time: **{wall:.1f} s** (target <= 30 s on 2 cores; {os.cpu_count()} CPUs here), "
          f"concurrency {args.concurrency}")
    chance = 1 / max(1, len(rep["confusion"]["labels"]))
    print(f"- chance (uniform over {len(rep['confusion']['labels'])} labels): {chance:.3f}\n")
    print("| metric | value | 95% CI | n |\n|---|---|---|---|")
    for name in ("top1_accuracy", "top1_accuracy_all_assigned", "top3_accuracy", "macro_f1", "weighted_f1",
                 "f1_3mdbench", "failure_rate", "other_rate", "unparseable_rate", "abstention_rate",
                 "mean_turns", "facts_elicited"):
        print(_row(name, m["overall"][name]))
    no_support = [lab for lab, b in m["by_label"].items() if not b.get("support")]
    print(f"\n- labels predicted but never true (no support, no F1): {', '.join(no_support) or 'none'}")
    print("\n### Top-1 accuracy by temperament\n\n| temperament | value | 95% CI | n |\n|---|---|---|---|")
    for t, block in m["by_temperament"].items():
        print(_row(t, block["top1_accuracy"]))
    pairs = m["paired"]["temperament"]
    if pairs:
        print("\n### Paired top-1 differences between temperaments\n\n| pair | value | 95% CI | cases |\n|---|---|---|---|")
        for pair, block in pairs.items():
            print(_row(pair, block["top1_accuracy"]))
    print("\n### Patient fidelity and doctor-side effects by temperament (value [95% CI])\n")
    print(fidelity_markdown(rep["patient"]))


if __name__ == "__main__":
    main()
