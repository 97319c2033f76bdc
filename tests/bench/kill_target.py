"""Run a slow benchmark in its own process so a test can SIGKILL it mid-run."""

import asyncio
import sys

from dxgraph.bench.grid import BenchConfig
from dxgraph.bench.runner import run_benchmark
from dxgraph.store import Store
from tests.bench.fakes import FakeHarness

if __name__ == "__main__":
    url, run_id, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    config = BenchConfig(run_id=run_id, concurrency=4)
    summary = asyncio.run(run_benchmark(config, Store(url), progress=False,
                                        harness=FakeHarness(n_cases=8, delay=delay)))
    print(summary.status, summary.ran, summary.skipped)
