"""Orchestration overhead: how close the runner gets to the bound a slow model server sets.

A local OpenAI-compatible stub answers every request after a fixed delay ``d`` with a valid
structured reply (the doctor asks a few questions then concludes; the patient answers). An
LLM doctor and an LLM patient both point at it, the judge is the rule judge. With ``c``
consultations in flight, each waiting on one request at a time, no runner can exceed
``c / d`` requests per second; the ratio achieved/bound measures everything the runner,
the dialogue graph, the model client and the store add. Target (issue 4): >= 0.8 at c = 32.

The baseline is the same consultations run the way 3MDBench runs them: one dialogue at a
time with blocking HTTP calls; its bound at any "concurrency" is ``1 / d``.

    python benchmarks/orchestration_throughput.py [--delay 0.2] [--levels 1,8,32,128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dxgraph.bench.grid import BenchConfig  # noqa: E402
from dxgraph.bench.runner import SimulatorHarness, run_benchmark  # noqa: E402
from dxgraph.models import load_model  # noqa: E402
from dxgraph.store import Store  # noqa: E402

QUESTIONS = 3  # doctor questions per consultation -> 4 doctor + 3 patient requests


from dxgraph.testing.net import free_port as _free_port  # noqa: E402


def reply_for(messages: list[dict]) -> dict:
    """The stub's answer from the raw OpenAI messages: doctor or patient by system prompt."""
    system_text = messages[0]["content"] if messages and isinstance(messages[0]["content"], str) else ""
    last = messages[-1]["content"] if isinstance(messages[-1]["content"], str) else ""
    if system_text.startswith("You are a patient"):
        return {"reply": "It started a week ago and itches.", "revealed_fact_ids": [],
                "end_consultation": "My conclusion" in last}
    asked = sum(1 for m in messages if m["role"] == "assistant")
    if asked < QUESTIONS and "consultation time is over" not in last:
        return {"question": f"Question {asked + 1}: when did it start?"}
    return {"final": {"label": "acne", "confidence": 0.6, "differential": [], "basis": "papules on the face"}}


class Counting:
    """Counts model requests (the numerator of the throughput)."""

    def __init__(self, inner):
        self.inner, self.spec, self.name, self.system_name = inner, inner.spec, inner.name, inner.system_name
        self.requests = 0

    async def generate(self, messages, **kw):
        self.requests += 1
        return await self.inner.generate(messages, **kw)

    async def aclose(self):
        await self.inner.aclose()


async def runner_level(url: str, concurrency: int, delay: float, samples: int,
                       profile_to: str | None = None) -> dict:
    spec = f"openai:stub@{url}"
    per_case = 5 * 2  # temperaments x strategies
    config = BenchConfig(run_id=f"tp{concurrency}", doctors=[spec], patient=spec, judge="rules",
                         strategies=["dialogue", "dialogue+image"], split=None,
                         limit=max(1, math.ceil(samples / per_case)), concurrency=concurrency,
                         max_turns=QUESTIONS + 2, sample_timeout_s=120)
    model = Counting(load_model(spec, max_concurrency=max(concurrency, 1)))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'tp.db'}")
        start, cpu0 = time.perf_counter(), time.process_time()
        profiler = None
        if profile_to is not None:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        summary = await run_benchmark(config, store, progress=False, harness=SimulatorHarness(config, {spec: model}))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_to)
        # CPU of this process only (all its threads; the stub server is another process):
        # model client, dialogue graph, rule judge and store, per model call.
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    await model.aclose()
    rps = model.requests / wall
    bound = concurrency / delay
    return {"concurrency": concurrency, "samples": summary.samples_total, "failed": summary.samples_failed,
            "requests": model.requests, "seconds": wall, "rps": rps, "bound": bound, "ratio": rps / bound,
            "cpu_ms_per_call": 1000 * cpu / max(model.requests, 1)}


def warm_up() -> dict:
    """Embed every bundled case's facts (what each patient's first turn needs) before timing.

    A run pays this once per case (and never again once the vectors are in the on-disk
    cache); left in a level it is charged to the first consultations' model calls and
    blocks the event loop while it runs, so it is measured and reported on its own.
    """
    from dxgraph.models.embeddings import get_embedder
    from dxgraph.simulator.cases import load_cases

    cpu0, start = time.process_time(), time.perf_counter()
    facts = [f.text for case in load_cases("bundled-all") for f in case.facts]
    get_embedder().embed(facts)
    return {"facts": len(facts), "seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu0}


def blocking_baseline(url: str, delay: float, samples: int) -> dict:
    """3MDBench's loop: for each dialogue, alternate blocking doctor and patient calls."""
    import httpx

    requests = 0
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(samples):
            doctor = [{"role": "system", "content": "You are a careful physician."},
                      {"role": "user", "content": "New telemedicine patient."}]
            patient = [{"role": "system", "content": "You are a patient in a telemedicine consultation."}]
            while True:
                r = client.post("/chat/completions", json={"model": "stub", "messages": doctor})
                requests += 1
                action = json.loads(r.json()["choices"][0]["message"]["content"])
                if "final" in action:
                    break
                doctor.append({"role": "assistant", "content": json.dumps(action)})
                patient.append({"role": "user", "content": f"Doctor: {action['question']}"})
                r = client.post("/chat/completions", json={"model": "stub", "messages": patient})
                requests += 1
                answer = json.loads(r.json()["choices"][0]["message"]["content"])
                patient.append({"role": "assistant", "content": answer["reply"]})
                doctor.append({"role": "user", "content": f"Patient: {answer['reply']}"})
    wall = time.perf_counter() - start
    return {"samples": samples, "requests": requests, "seconds": wall, "rps": requests / wall}


def serve(port: int, delay: float) -> None:
    """Run the stub in this process until killed (the benchmark starts it as a subprocess)."""
    from dxgraph.testing.stub_server import StubServer

    with StubServer(responder=lambda body: reply_for(body["messages"]), delay_s=delay, port=port):
        while True:
            time.sleep(3600)




def main() -> None:
    import subprocess
    import urllib.request

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--levels", default="1,8,32,128")
    ap.add_argument("--waves", type=int, default=3, help="consultations per slot (samples = waves x c)")
    ap.add_argument("--profile", metavar="DIR", help="write a cProfile of each level to DIR/level-C.prof")
    ap.add_argument("--no-warm-up", action="store_true",
                    help="leave the one-off embedding of case facts inside the levels")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.delay)
        return
    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    warm = None if args.no_warm_up else warm_up()
    # The server runs in its own process: in this one it would share the GIL with the runner
    # and its own CPU time would be charged to orchestration.
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--delay", str(args.delay)])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("stub server did not start")
                time.sleep(0.2)
        for c in levels:
            # Whole waves only: with a partial last wave, even a zero-overhead runner would
            # fall short of c/d (100 samples at c=32 are 4 waves, the last one an eighth full).
            unit = math.lcm(c, 10)  # 10 samples per case: 5 temperaments x 2 strategies
            prof = str(Path(args.profile) / f"level-{c}.prof") if args.profile else None
            if prof:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
            rows.append(asyncio.run(runner_level(url, c, args.delay, samples=unit * math.ceil(args.waves * c / unit),
                                                 profile_to=prof)))
        base = blocking_baseline(url, args.delay, samples=5)
    finally:
        server.kill()
        server.wait()
    print(f"## Orchestration throughput (stub server in its own process, fixed delay {args.delay:g} s, "
          f"LLM doctor + LLM patient, rule judge)\n")
    print("| concurrency | samples | failed | requests | seconds | requests/s | bound c/d | ratio | client CPU ms/call |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['samples']} | {r['failed']} | {r['requests']} | {r['seconds']:.1f} | "
              f"{r['rps']:.1f} | {r['bound']:.0f} | **{r['ratio']:.2f}** | {r['cpu_ms_per_call']:.1f} |")
    if warm is not None:
        print(f"\nWarm-up before the levels (once per process; nothing once the vectors are in the on-disk "
              f"cache): {warm['facts']} case facts embedded in {warm['seconds']:.1f} s, {warm['cpu']:.1f} s CPU.")
    print("\nclient CPU ms/call: this process's CPU time (all threads) over the level, per model call; "
          "the ratio at concurrency c cannot pass 1000 / (c/d x ms per call) on one core.")
    print(f"\nBaseline, 3MDBench style (one dialogue at a time, blocking calls): {base['requests']} requests in "
          f"{base['seconds']:.1f} s = {base['rps']:.2f} requests/s; ratio to its own bound 1/d = "
          f"{base['rps'] * args.delay:.2f}; dxgraph at c=32 does "
          f"{rows[levels.index(32)]['rps'] / base['rps']:.1f}x the baseline's requests/s" if 32 in levels else "")


if __name__ == "__main__":
    main()
