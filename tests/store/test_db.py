import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from dxgraph.errors import StoreError
from dxgraph.store import SampleRow, Store
from dxgraph.types import Diagnosis, IndicatorResult, ToolCallRecord, Turn


@pytest.fixture()
def store(db_url):
    return Store(db_url)


def test_tables_created_on_first_use_and_wal_mode(tmp_path):
    path = tmp_path / "fresh.db"
    Store(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert {"runs", "samples", "turns", "tool_calls", "diagnoses"} <= tables
    assert con.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_default_url_comes_from_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DXGRAPH_HOME", str(tmp_path / "h"))
    s = Store()
    assert s.url == f"sqlite:///{tmp_path / 'h' / 'dxgraph.db'}"
    assert (tmp_path / "h" / "dxgraph.db").exists()


def test_sample_with_turns_round_trips_and_done_is_never_overwritten(store):
    store.create_run("r1", kind="dialogue", config={"a": 1}, samples_total=2)
    turns = [Turn(index=0, role="patient", text="itchy rash", revealed_facts=["f1"], latency_ms=3.5),
             Turn(index=1, role="doctor", text="since when?", output_tokens=4)]
    store.save_sample(SampleRow(run_id="r1", key="c1|sanguine", case_id="c1", result_json='{"x": 1}'), turns)
    store.save_sample(SampleRow(run_id="r1", key="c1|sanguine", case_id="c1", result_json='{"x": 2}'), [])
    rows = store.samples("r1")
    assert len(rows) == 1 and rows[0].result_json == '{"x": 1}'
    got = store.turns("r1", "c1|sanguine")
    assert [t.text for t in got] == ["itchy rash", "since when?"]
    assert got[0].revealed_json == '["f1"]' and got[1].output_tokens == 4


def test_errored_sample_is_replaced_by_a_retry(store):
    store.create_run("r2", kind="dialogue", config={}, samples_total=1)
    store.save_sample(SampleRow(run_id="r2", key="k", status="error", error="timeout"))
    assert store.sample_keys("r2", "error") == {"k"}
    store.save_sample(SampleRow(run_id="r2", key="k", status="done"))
    rows = store.samples("r2")
    assert len(rows) == 1 and rows[0].status == "done" and rows[0].attempts == 2


def test_concurrent_writers_never_duplicate_a_key(store):
    store.create_run("r3", kind="dialogue", config={}, samples_total=20)

    def worker(w):
        for i in range(20):
            store.save_sample(SampleRow(run_id="r3", key=f"k{i}", worker=str(w)))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(store.samples("r3")) == 20


def test_create_run_is_idempotent_for_resume(store):
    a = store.create_run("r4", kind="dialogue", config={"x": 1}, samples_total=5)
    store.set_run_status("r4", "partial")
    b = store.create_run("r4", kind="dialogue", config={"x": 1}, samples_total=5)
    assert a.id == b.id and b.status == "running"
    assert [r.id for r in store.list_runs()] == ["r4"]


def test_diagnosis_and_tool_calls_persist(store):
    dx = Diagnosis(workflow="glaucoma", outcome="negative", score=0.2, indicators=[
        IndicatorResult(id="vcdr", kind="quantitative", value=0.41, status="ok", passed=False,
                        calls=[ToolCallRecord(tool="segment_optic_disc_cup", version="1", seconds=0.3),
                               ToolCallRecord(tool="vertical_cup_to_disc_ratio", version="1", seconds=0.01,
                                              outputs={"vcdr": 0.41})])])
    did = store.save_diagnosis(dx)
    [row] = store.diagnoses("glaucoma")
    assert row.id == did and row.outcome == "negative"
    assert Diagnosis.model_validate_json(row.result_json) == dx
    calls = store.tool_calls(did)
    assert [c.tool for c in calls] == ["segment_optic_disc_cup", "vertical_cup_to_disc_ratio"]


def test_unreachable_database_is_a_store_error():
    with pytest.raises(StoreError, match="cannot open the store"):
        Store("sqlite:////proc/definitely/not/here.db")


def test_settle_sets_complete_only_when_every_key_is_done(store):
    store.create_run("r5", kind="dialogue", config={}, samples_total=2)
    store.save_sample(SampleRow(run_id="r5", key="a"))
    store.save_sample(SampleRow(run_id="r5", key="b", status="error", error="x"))
    status, done, failed = store.settle_run_status("r5", {"a", "b"})
    assert (status, done, failed) == ("partial", {"a"}, {"b"}) and store.get_run("r5").status == "partial"
    store.save_sample(SampleRow(run_id="r5", key="b"))
    assert store.settle_run_status("r5", {"a", "b"})[0] == "complete"
    assert store.get_run("r5").status == "complete"


_START = """
import os, sys, time
from dxgraph.store.db import Store
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
store = Store(sys.argv[1])
store.create_run("r", kind="bench", config={}, samples_total=1)
print(len(store.list_runs()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_four_processes_starting_on_a_new_store_all_succeed(tmp_path, backend):
    """Each process imports first and then waits for one signal, so all four open the new
    store within a millisecond; with a plain create_all, most SQLite trials had one fail, and
    on PostgreSQL two racing CREATE TABLEs collide in pg_type (the advisory lock serialises them)."""
    from tests.subprocess_cli import ROOT

    pg_url = os.environ.get("DXGRAPH_TEST_POSTGRES_URL")
    if backend == "postgres" and not pg_url:
        pytest.skip("PostgreSQL not provided: run scripts/start_postgres.sh and set DXGRAPH_TEST_POSTGRES_URL")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for trial in range(3):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'new{trial}.db'}"
        else:
            from sqlmodel import SQLModel

            from dxgraph.store.db import get_engine

            url = pg_url
            SQLModel.metadata.drop_all(get_engine(url))
        go = tmp_path / f"go{trial}"
        procs = [subprocess.Popen([sys.executable, "-c", _START, url, str(go)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
        time.sleep(3)  # every process has imported and is waiting
        go.touch()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "1", err[-300:]
