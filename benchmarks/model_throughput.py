"""Model client throughput: how close ``OpenAICompatModel`` gets to a slow server's bound.

The stub server answers each request after a fixed delay ``d``; with ``c`` requests in
flight no client can exceed ``c / d`` requests per second. The ratio achieved/bound measures
what the client adds (pooling, limiter, JSON, retries). With ``--fail-rate`` the server also
fails that share of requests with 500s, and every call must still be answered.

    python benchmarks/model_throughput.py [--delay 0.2] [--levels 1,8,32,128] [--fail-rate 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dxgraph.models import user  # noqa: E402
from dxgraph.models.openai_compat import OpenAICompatModel  # noqa: E402
from dxgraph.testing.stub_server import StubServer  # noqa: E402


async def level(url: str, concurrency: int, requests: int) -> tuple[float, int]:
    model = OpenAICompatModel("stub", url, max_concurrency=concurrency, max_retries=10,
                              backoff_base_s=0.05, backoff_max_s=0.5)
    await model.generate([user("warm up")])
    start = time.perf_counter()
    outs = await asyncio.gather(*(model.generate([user(f"q{i}")]) for i in range(requests)))
    wall = time.perf_counter() - start
    await model.aclose()
    assert all(o.text == f"stub reply to: q{i}" for i, o in enumerate(outs))
    return wall, sum(o.attempts for o in outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--levels", default="1,8,32,128")
    ap.add_argument("--waves", type=int, default=4, help="requests per level = waves x concurrency")
    ap.add_argument("--fail-rate", type=float, default=0.0)
    args = ap.parse_args()
    print(f"## Model client throughput (stub server, delay {args.delay:g} s, fail rate {args.fail_rate:g})\n")
    print("| concurrency | requests | attempts | seconds | requests/s | bound c/d | ratio |")
    print("|---|---|---|---|---|---|---|")
    with StubServer(delay_s=args.delay, fail_rate=args.fail_rate, seed=0) as server:
        for c in (int(x) for x in args.levels.split(",")):
            n = args.waves * c
            wall, attempts = asyncio.run(level(server.base_url, c, n))
            rps, bound = n / wall, c / args.delay
            print(f"| {c} | {n} | {attempts} | {wall:.2f} | {rps:.1f} | {bound:.0f} | **{rps / bound:.2f}** |")


if __name__ == "__main__":
    main()
