import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dxgraph.bench.grid import BenchConfig, parse_shard, shard_of
from dxgraph.bench.runner import retry, run_benchmark
from dxgraph.errors import InputError
from dxgraph.store import Store
from tests.bench.fakes import FakeHarness

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'bench.db'}")


def _keys(store, run_id):
    rows = store.samples(run_id)
    return [r.key for r in rows]


async def test_full_run_stores_every_sample_with_turns(store):
    h = FakeHarness(n_cases=4)
    s = await run_benchmark(BenchConfig(run_id="r", concurrency=3), store, progress=False, harness=h)
    assert (s.status, s.samples_total, s.samples_done, s.samples_failed, s.ran) == ("complete", 20, 20, 0, 20)
    assert store.get_run("r").status == "complete"
    keys = _keys(store, "r")
    assert len(keys) == len(set(keys)) == 20
    assert "case000|neutral|dialogue|rules" in keys
    assert len(store.turns("r", "case000|neutral|dialogue|rules")) == 3
    result = json.loads(store.samples("r")[0].result_json)
    assert result["judge"]["correct"] is True and result["turns"] == 2
    assert h.closed


async def test_resume_after_interruption_gives_exactly_the_grid(store):
    config = BenchConfig(run_id="r", concurrency=2)

    class Interrupted(FakeHarness):
        """Finishes five samples, then every consultation hangs until the run is cancelled."""

        async def consult(self, sample):
            if len(self.calls) >= 5:
                self.calls.append(sample.key)
                await asyncio.sleep(3600)
            return await super().consult(sample)

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(run_benchmark(config, store, progress=False, harness=Interrupted(n_cases=6)), timeout=2)
    first = set(_keys(store, "r"))
    assert len(first) == 5
    again = FakeHarness(n_cases=6)
    s = await run_benchmark(config, store, progress=False, harness=again)
    keys = _keys(store, "r")
    assert len(keys) == len(set(keys)) == 30 and s.status == "complete"
    assert not first & set(again.calls)  # nothing done was played twice
    assert s.skipped == len(first)


async def test_shards_partition_the_grid(store):
    seen = []
    statuses = []
    for i in range(3):
        h = FakeHarness(n_cases=5)
        s = await run_benchmark(BenchConfig(run_id="r", shard=f"{i}/3"), store, progress=False, harness=h)
        seen.append(set(h.calls))
        statuses.append(s.status)
        assert all(shard_of(k, 3) == i for k in h.calls)
    assert sum(len(x) for x in seen) == len(set().union(*seen)) == 25
    assert statuses[:2] == ["partial", "partial"] and statuses[2] == "complete"
    assert len(_keys(store, "r")) == 25


async def test_errors_are_recorded_never_fatal_and_retry_completes_them(store):
    fail = {"case000|neutral|dialogue|rules": "model", "case001|sanguine|dialogue|rules": "bug",
            "case002|choleric|dialogue|rules": "hang"}
    config = BenchConfig(run_id="r", concurrency=4, sample_timeout_s=0.3)
    s = await run_benchmark(config, store, progress=False, harness=FakeHarness(n_cases=3, fail=fail))
    assert (s.status, s.samples_done, s.samples_failed, s.errors) == ("partial", 12, 3, 3)
    errors = {r.key: r.error for r in store.samples("r", "error")}
    assert errors["case000|neutral|dialogue|rules"].startswith("ModelError: endpoint 'stub' failed")
    assert errors["case001|sanguine|dialogue|rules"].startswith("KeyError: 'missing' (fakes.py:")
    assert errors["case002|choleric|dialogue|rules"] == "TimeoutError: sample exceeded 0.3 s"
    healthy = FakeHarness(n_cases=3)
    r = await retry("r", store, progress=False, harness=healthy)
    assert sorted(healthy.calls) == sorted(fail)
    assert (r.status, r.samples_done, r.samples_failed, r.ran) == ("complete", 15, 0, 3)
    rows = store.samples("r")
    assert len(rows) == 15 and {r.attempts for r in rows if r.key in fail} == {2}


async def test_resume_with_another_grid_is_an_input_error(store):
    await run_benchmark(BenchConfig(run_id="r"), store, progress=False, harness=FakeHarness(n_cases=2))
    with pytest.raises(InputError, match=r"run 'r' exists with a different grid \(differs in max_turns, strategies\)"):
        await run_benchmark(BenchConfig(run_id="r", strategies=["single"], max_turns=3), store,
                            progress=False, harness=FakeHarness(n_cases=2))
    # execution settings may change between resumes
    s = await run_benchmark(BenchConfig(run_id="r", concurrency=1, sample_timeout_s=5), store,
                            progress=False, harness=FakeHarness(n_cases=2))
    assert s.status == "complete" and s.ran == 0 and s.skipped == 10


async def test_limit_and_temperament_subset(store):
    h = FakeHarness(n_cases=6, temperaments=["neutral", "choleric"])
    s = await run_benchmark(BenchConfig(run_id="r", limit=2, strategies=["single", "dialogue"],
                                        doctors=["rules", "scripted"]), store, progress=False, harness=h)
    assert s.samples_total == 2 * 2 * 2 * 2
    played = {k.split("|")[0] for k in h.calls}
    assert len(played) == 2
    labels = {c.id: c.diagnosis for c in h.load_cases()}
    assert len({labels[c] for c in played}) == 2  # stratified: two labels, not the first two ids


def test_bad_inputs_are_one_line_input_errors():
    with pytest.raises(InputError, match="unknown strategy 'chat'"):
        BenchConfig(run_id="r", strategies=["chat"])
    for bad in ("3/3", "x/2", "1", "-1/2", "0/0"):
        with pytest.raises(InputError, match="is not I/N"):
            parse_shard(bad)
    assert str(parse_shard("2/5")) == "2/5"


async def test_retry_of_unknown_run_names_it(store):
    with pytest.raises(InputError, match="no run 'nope'"):
        await retry("nope", store, progress=False, harness=FakeHarness())


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_leaves_exactly_the_grid(tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.bench.kill_target", url, "k", "0.15"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = Store(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if store.get_run("k") is not None and len(store.sample_keys("k")) >= 8:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    partial = store.sample_keys("k")
    assert 8 <= len(partial) < 40, "the runner should have been killed mid-run"
    assert store.get_run("k").status == "running"
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status, ran, skipped = out.stdout.split()
    assert status == "complete" and int(skipped) == len(partial) and int(ran) == 40 - len(partial)
    keys = [r.key for r in store.samples("k")]
    assert len(keys) == len(set(keys)) == 40
    assert all(r.status == "done" for r in store.samples("k"))
