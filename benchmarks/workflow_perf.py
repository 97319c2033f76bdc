"""Diagnostic-graph performance: per-step overhead, memory over a long run, cache hit vs cold.

    .venv/bin/python benchmarks/workflow_perf.py [--runs 500] [--skip-glaucoma]

1. Overhead: a workflow of 4 indicators x 3 instant tool steps run through the real
   langgraph graph (plan -> Send -> tool agent -> assess) with the cache off, against the
   same 12 function calls made directly. Reports microseconds of orchestration per step.
2. Memory: RSS after every block of runs over a long sequence; growth per 1000 runs.
3. Cache: the glaucoma workflow on skimage's retina photograph, cold (empty cache, fresh
   process state) vs warm (disk cache hit), median of several runs.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dxgraph.tools.data import Image  # noqa: E402
from dxgraph.tools.cache import ToolCache  # noqa: E402
from dxgraph.tools.registry import FilePath, tool  # noqa: E402
from dxgraph.tools.runner import ToolRunner  # noqa: E402
from dxgraph.workflows.loader import parse_workflow  # noqa: E402
from dxgraph.agents.diagnose import run_workflow  # noqa: E402


@tool(version="1", cache=False)
def bench_read(path: FilePath) -> Image:
    """Instant read.

    Args:
        path: ignored beyond its name.
    """
    return Image(array=np.zeros(4, dtype=np.float32), source=str(path))


@tool(version="1", cache=False, outputs=("s",))
def bench_sum(image: Image) -> float:
    """Instant sum.

    Args:
        image: the image.
    """
    return float(image.array.sum())


@tool(version="1", cache=False, outputs=("t",))
def bench_add(s: float, k: float = 1.0) -> float:
    """Instant add.

    Args:
        s: a number.
        k: added.
    """
    return s + k


def _workflow():
    inds = []
    for i in range(4):
        inds.append(f"""
  - id: ind{i}
    description: instant
    kind: quantitative
    steps:
      - {{tool: bench_read, inputs: {{path: image}}, outputs: img}}
      - {{tool: bench_sum, inputs: {{image: img}}, outputs: s}}
      - {{tool: bench_add, inputs: {{s: s}}, args: {{k: {i}.0}}, outputs: t}}
    rule: t >= 1""")
    text = ("id: bench\nname: bench\nmodality: none\nquestion: q\noutcomes: {positive: p, negative: n}\n"
            "inputs: [{name: image}]\nindicators:" + "".join(inds) + "\ndecision: {method: any}\n")
    return parse_workflow(text)


def overhead(runs: int, path: str) -> dict[str, float]:
    wf = _workflow()
    runner = ToolRunner(ToolCache(None), strict=True)

    async def graph_loop():
        for _ in range(runs):
            await run_workflow(wf, [path], runner=runner)

    def direct_loop():
        for _ in range(runs):
            for i in range(4):
                img = bench_read(path)
                bench_add(bench_sum(img), float(i))

    asyncio.run(run_workflow(wf, [path], runner=runner))  # warm up
    t0 = time.perf_counter()
    asyncio.run(graph_loop())
    graph_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    direct_loop()
    direct_s = time.perf_counter() - t0
    steps = runs * 12
    return {"runs": runs, "graph_ms_per_run": 1000 * graph_s / runs, "direct_ms_per_run": 1000 * direct_s / runs,
            "overhead_us_per_step": 1e6 * (graph_s - direct_s) / steps}


def memory(runs: int, path: str) -> dict[str, float]:
    wf = _workflow()
    runner = ToolRunner(ToolCache(None), strict=True)
    proc = psutil.Process()
    samples = []

    async def loop():
        for i in range(runs):
            await run_workflow(wf, [path], runner=runner)
            if i % max(1, runs // 10) == 0:
                gc.collect()
                samples.append((i, proc.memory_info().rss / 2**20))

    asyncio.run(loop())
    xs = np.array([s[0] for s in samples[2:]], dtype=float)
    ys = np.array([s[1] for s in samples[2:]], dtype=float)
    slope = float(np.polyfit(xs, ys, 1)[0] * 1000) if len(xs) > 2 else float("nan")
    return {"runs": runs, "rss_start_mb": samples[0][1], "rss_end_mb": samples[-1][1], "growth_mb_per_1000_runs": slope}


def cache(repeats: int = 5) -> dict[str, float]:
    cold, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            runner = ToolRunner(ToolCache(Path(d)))
            t0 = time.perf_counter()
            dx = asyncio.run(run_workflow("glaucoma", ["sample:retina"], runner=runner))
            cold.append(time.perf_counter() - t0)
            fresh = ToolRunner(ToolCache(Path(d)))  # new process memory, same disk cache
            t0 = time.perf_counter()
            asyncio.run(run_workflow("glaucoma", ["sample:retina"], runner=fresh))
            warm.append(time.perf_counter() - t0)
    vcdr = next(i.value for i in dx.indicators if i.id == "vcdr")
    return {"cold_s": statistics.median(cold), "warm_ms": 1000 * statistics.median(warm),
            "speedup": statistics.median(cold) / statistics.median(warm), "vcdr": vcdr}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--memory-runs", type=int, default=3000)
    ap.add_argument("--skip-glaucoma", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        o = overhead(a.runs, f.name)
        m = memory(a.memory_runs, f.name)
    print("| measure | value |\n|---|---|")
    print(f"| graph run, 4 indicators x 3 instant steps | {o['graph_ms_per_run']:.2f} ms |")
    print(f"| same 12 calls made directly | {o['direct_ms_per_run']:.3f} ms |")
    print(f"| orchestration overhead per tool step | {o['overhead_us_per_step']:.0f} us |")
    print(f"| RSS over {m['runs']} runs | {m['rss_start_mb']:.0f} -> {m['rss_end_mb']:.0f} MB |")
    print(f"| RSS growth per 1000 runs (fit after warm-up) | {m['growth_mb_per_1000_runs']:.2f} MB |")
    if not a.skip_glaucoma:
        c = cache()
        print(f"| glaucoma on sample:retina, cold (median) | {c['cold_s']:.2f} s |")
        print(f"| glaucoma on sample:retina, cache hit (median) | {c['warm_ms']:.1f} ms |")
        print(f"| cache speed-up | {c['speedup']:.0f}x |")
        print(f"| vCDR found on sample:retina | {c['vcdr']:.3f} |")


if __name__ == "__main__":
    main()
