"""Several ``dxgraph bench run --shard I/N`` processes share one run id on one store; one is
SIGKILLed mid-run and started again. The store must end with exactly the grid's samples.

The agents are the LLM doctor and LLM patient against a ``StubServer`` with a fixed delay per
request (the deployment shape: many workers, one model server), so a consultation takes a
few tenths of a second and the kill reliably lands while the victim still has samples in
flight and to go; the rule agents finish a small grid before a test could aim a signal.
Runs on SQLite (WAL, several writers on one file) and, when provided, on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dxgraph.bench.grid import select_cases, shard_of
from dxgraph.testing.stub_server import StubServer
from dxgraph.simulator.cases import load_cases
from dxgraph.simulator.personas import TEMPERAMENTS
from dxgraph.store import Store
from tests.bench.test_stub_reliability import StubAgents

ROOT = Path(__file__).resolve().parents[2]
RUN = "sharded"
SHARDS = 3
VICTIM = 1
CASES = 6


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from dxgraph.cli import main; main()", *args]


def _summary(proc: subprocess.Popen, timeout: float) -> tuple[int, int, int]:
    """``(ran, errors, skipped)`` from a finished runner's summary line."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    text = " ".join(out.split())
    m = re.search(r"this call ran (\d+) \((\d+) errors\), skipped (\d+) already done", text)
    assert m, text
    return int(m[1]), int(m[2]), int(m[3])


@pytest.mark.slow
def test_shards_with_one_sigkilled_and_restarted_store_exactly_the_grid(db_url, tmp_path):
    # The cases `--limit CASES` draws (seeded, stratified by label), so the keys match the run's.
    cases = sorted(c.id for c in select_cases(load_cases("bundled", split="test"), CASES))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    store = Store(db_url)
    with StubServer(responder=StubAgents(), delay_s=0.1) as server:
        spec = f"openai:stub@{server.base_url}"
        grid = {f"{c}|{t}|dialogue|{spec}" for c in cases for t in TEMPERAMENTS}
        share = {i: {k for k in grid if shard_of(k, SHARDS) == i} for i in range(SHARDS)}
        assert all(len(keys) >= 4 for keys in share.values())  # each shard has work to interrupt

        def start(i: int) -> subprocess.Popen:
            return subprocess.Popen(
                _cli("bench", "run", "--run-id", RUN, "--shard", f"{i}/{SHARDS}", "--doctor", spec,
                     "--patient", spec, "--judge", "rules", "--limit", str(CASES), "--temperaments", "all",
                     "--max-turns", "4", "--concurrency", "2", "--db", db_url, "--no-progress"),
                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        procs = {i: start(i) for i in range(SHARDS)}
        try:
            deadline = time.monotonic() + 60
            while len(store.sample_keys(RUN) & share[VICTIM]) < 2:
                assert procs[VICTIM].poll() is None, procs[VICTIM].communicate()
                assert time.monotonic() < deadline, "the victim shard stored nothing within 60 s"
                time.sleep(0.05)
            procs[VICTIM].send_signal(signal.SIGKILL)
            procs[VICTIM].wait(10)
            survived = store.sample_keys(RUN) & share[VICTIM]
            assert 2 <= len(survived) < len(share[VICTIM]), "the kill should land mid-run"
            assert store.get_run(RUN).status != "complete"

            restarted = start(VICTIM)
            ran, errors, skipped = _summary(restarted, timeout=90)
            assert (ran, errors, skipped) == (len(share[VICTIM]) - len(survived), 0, len(survived))
            for i in set(procs) - {VICTIM}:
                assert _summary(procs[i], timeout=90) == (len(share[i]), 0, 0)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()

    rows = store.samples(RUN)
    keys = [r.key for r in rows]
    assert len(keys) == len(set(keys)) == len(grid) and set(keys) == grid  # none twice, none lost
    assert all(r.status == "done" and r.attempts == 1 for r in rows)
    # Every key was written by a process of its own shard; the victim's by both its lives.
    pids = {i: {p.pid} for i, p in procs.items()}
    pids[VICTIM].add(restarted.pid)
    assert all(int(r.worker.rsplit(":", 1)[1]) in pids[shard_of(r.key, SHARDS)] for r in rows)
    assert {int(r.worker.rsplit(":", 1)[1]) for r in rows if r.key in share[VICTIM]} == pids[VICTIM]
    run = store.get_run(RUN)
    assert (run.status, run.samples_total) == ("complete", len(grid))
    for key in grid:  # each consultation's turns stored once, even where the kill cut one short
        index = [t.index for t in store.turns(RUN, key)]
        assert index and len(index) == len(set(index)), key
