"""Engine, sessions and the ``Store`` facade over the tables.

SQLite by default (a file under ``DXGRAPH_HOME``, WAL mode so readers never block the
writer), any SQLAlchemy URL through ``DXGRAPH_DATABASE_URL`` (Postgres for many processes).
Tables are created on first use, under a lock (SQLite's write lock, a Postgres advisory
lock), so processes starting together on a new store do not race. Every write is one transaction (``with Session.begin()``):
a crash leaves either the whole sample or none of it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import event, select as sa_select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine, delete, select

from dxgraph.errors import StoreError
from dxgraph.store.tables import DiagnosisRow, RunRow, SampleRow, ToolCallRow, TurnRow, utcnow
from dxgraph.types import Diagnosis, Turn

__all__ = ["Store", "get_engine", "open_store"]

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


_START_TRIES = 60
_PG_LOCK_KEY = 0x6478_6772  # "dxgr": the advisory lock that serialises table creation


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")  # first: the pragmas below may wait for another process
    for attempt in range(_START_TRIES):
        try:
            cur.execute("PRAGMA journal_mode=WAL")  # switching a new file to WAL can answer "locked"
            break
        except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError from the DB-API
            if "locked" not in str(exc) or attempt == _START_TRIES - 1:
                raise
            time.sleep(0.05 * (1 + attempt % 5))
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _create_tables(engine: Engine) -> None:
    """``create_all`` with one process at a time: two checking "does table runs exist?" at
    once would both say no and the second CREATE fail. SQLite takes its write lock with
    ``BEGIN IMMEDIATE`` (waiting up to busy_timeout), Postgres a transaction advisory lock."""
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                SQLModel.metadata.create_all(conn)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    elif engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            SQLModel.metadata.create_all(conn)
    else:
        SQLModel.metadata.create_all(engine)


def get_engine(url: str) -> Engine:
    """One engine per URL per process, tables created on first use."""
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        try:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
            _create_tables(engine)
        except (SQLAlchemyError, OSError, ModuleNotFoundError) as exc:
            raise StoreError(f"cannot open the store at {_redact(url)!r}: {exc}".splitlines()[0]) from None
        _engines[url] = engine
        return engine


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


class Store:
    """Reads and writes runs, samples, turns and diagnoses.

    Args:
        url: SQLAlchemy URL; default from settings (``DXGRAPH_DATABASE_URL`` or the SQLite
            file under ``DXGRAPH_HOME``).
    """

    def __init__(self, url: str | None = None):
        if url is None:
            from dxgraph.config import load_settings

            url = load_settings().db_url
        self.url = url
        self.engine = get_engine(url)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------------ runs
    def create_run(self, run_id: str, *, kind: str, config: dict[str, Any], samples_total: int) -> RunRow:
        """Create a run, or return the existing one with that id (resume)."""
        with self.session() as s, s.begin():
            run = s.get(RunRow, run_id)
            if run is None:
                run = RunRow(id=run_id, kind=kind, config_json=json.dumps(config, sort_keys=True),
                             samples_total=samples_total)
                s.add(run)
                try:
                    s.flush()
                except IntegrityError:  # another worker created it first
                    s.rollback()
                    return self.get_run(run_id)  # type: ignore[return-value]
            else:
                run.samples_total = max(run.samples_total, samples_total)
                run.status = "running"
                run.updated_at = utcnow()
            return run

    def update_result(self, run_id: str, key: str, change) -> bool:
        """Rewrite a done sample's ``result_json`` as ``change(old_json) -> new_json`` under the
        row's lock (two judges writing at once both land); False when the sample is not done."""
        with self.session() as s, s.begin():
            row = s.exec(select(SampleRow).where(SampleRow.run_id == run_id, SampleRow.key == key,
                                                 SampleRow.status == "done").with_for_update()).first()
            if row is None:
                return False
            row.result_json = change(row.result_json)
            return True

    def get_run(self, run_id: str) -> RunRow | None:
        with self.session() as s:
            return s.get(RunRow, run_id)

    def list_runs(self, kind: str | None = None) -> list[RunRow]:
        with self.session() as s:
            q = select(RunRow).order_by(RunRow.created_at.desc())
            if kind:
                q = q.where(RunRow.kind == kind)
            return list(s.exec(q))

    def set_run_status(self, run_id: str, status: str) -> None:
        with self.session() as s, s.begin():
            run = s.get(RunRow, run_id)
            if run is not None:
                run.status = status
                run.updated_at = utcnow()

    def settle_run_status(self, run_id: str, keys: set[str]) -> tuple[str, set[str], set[str]]:
        """Count the run's done/errored samples among ``keys`` and set complete/partial, in
        one transaction holding the run row's lock: two shards finishing together serialise
        here, and the later one sees the other's samples (they commit before this)."""
        with self.session() as s, s.begin():
            run = s.exec(select(RunRow).where(RunRow.id == run_id).with_for_update()).first()
            rows = s.execute(sa_select(SampleRow.key, SampleRow.status).where(SampleRow.run_id == run_id)).all()
            done = {k for k, st in rows if st == "done"} & keys
            failed = {k for k, st in rows if st == "error"} & keys
            status = "complete" if done == keys else "partial"
            if run is not None:
                run.status = status
                run.updated_at = utcnow()
            return status, done, failed

    # --------------------------------------------------------------- samples
    def sample_keys(self, run_id: str, status: str | None = None) -> set[str]:
        with self.session() as s:
            q = sa_select(SampleRow.key).where(SampleRow.run_id == run_id)
            if status:
                q = q.where(SampleRow.status == status)
            return {row[0] for row in s.execute(q)}

    def save_sample(self, sample: SampleRow, turns: Iterable[Turn] = ()) -> None:
        """Write a finished sample and its turns in one transaction, replacing an earlier
        errored attempt of the same key. A ``done`` sample is never overwritten."""
        try:
            with self.session() as s, s.begin():
                existing = s.exec(
                    select(SampleRow).where(SampleRow.run_id == sample.run_id, SampleRow.key == sample.key)
                ).first()
                if existing is not None:
                    if existing.status == "done":
                        return
                    sample.attempts = existing.attempts + 1
                    s.delete(existing)
                    s.flush()
                s.exec(delete(TurnRow).where(TurnRow.run_id == sample.run_id, TurnRow.sample_key == sample.key))
                s.add(sample)
                for t in turns:
                    s.add(TurnRow(run_id=sample.run_id, sample_key=sample.key, index=t.index, role=t.role,
                                  text=t.text, revealed_json=json.dumps(t.revealed_facts),
                                  latency_ms=t.latency_ms, input_tokens=t.input_tokens,
                                  output_tokens=t.output_tokens))
        except IntegrityError:
            return  # a concurrent worker stored this key first; the unique key keeps one copy
        except OperationalError as exc:
            raise StoreError(f"could not write sample {sample.key!r}: {exc.orig}") from None

    def samples(self, run_id: str, status: str | None = None) -> list[SampleRow]:
        with self.session() as s:
            q = select(SampleRow).where(SampleRow.run_id == run_id).order_by(SampleRow.id)
            if status:
                q = q.where(SampleRow.status == status)
            return list(s.exec(q))

    def sample(self, run_id: str, key: str) -> SampleRow | None:
        with self.session() as s:
            return s.exec(select(SampleRow).where(SampleRow.run_id == run_id, SampleRow.key == key)).first()

    def turns(self, run_id: str, sample_key: str) -> list[TurnRow]:
        with self.session() as s:
            q = (select(TurnRow).where(TurnRow.run_id == run_id, TurnRow.sample_key == sample_key)
                 .order_by(TurnRow.index))
            return list(s.exec(q))

    # ------------------------------------------------------------- diagnoses
    def save_diagnosis(self, dx: Diagnosis, *, run_id: str | None = None, sample_key: str | None = None) -> int:
        """Store a workflow diagnosis with one row per tool call; returns its id."""
        with self.session() as s, s.begin():
            row = DiagnosisRow(run_id=run_id, sample_key=sample_key, workflow=dx.workflow,
                               workflow_version=dx.workflow_version, outcome=dx.outcome, score=dx.score,
                               trace_id=dx.trace_id, result_json=dx.model_dump_json())
            s.add(row)
            s.flush()
            for ind in dx.indicators:
                for call in ind.calls:
                    s.add(ToolCallRow(diagnosis_id=row.id, indicator=ind.id, tool=call.tool,
                                      version=call.version, seconds=call.seconds, cached=call.cached,
                                      error=call.error, outputs_json=json.dumps(call.outputs, default=str)))
            return int(row.id)

    def diagnoses(self, workflow: str | None = None, limit: int = 100) -> list[DiagnosisRow]:
        with self.session() as s:
            q = select(DiagnosisRow).order_by(DiagnosisRow.id.desc()).limit(limit)
            if workflow:
                q = q.where(DiagnosisRow.workflow == workflow)
            return list(s.exec(q))

    def tool_calls(self, diagnosis_id: int) -> list[ToolCallRow]:
        with self.session() as s:
            return list(s.exec(select(ToolCallRow).where(ToolCallRow.diagnosis_id == diagnosis_id)))


def open_store(url: str | None = None) -> Store:
    return Store(url)
