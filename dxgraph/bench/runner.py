"""Run a dialogue benchmark: the grid, concurrency, per-sample persistence, resume, retry.

Design (inspect_ai's eval log, done against a database):

* every sample is written to the store the moment it finishes, in one transaction, so a
  crash (even SIGKILL) loses at most the consultations in flight;
* rerunning a run id skips every key already ``done``; the store never keeps two rows of
  one key, so several processes (``--shard I/N``, or by accident the same shard twice)
  can share a run on one Postgres;
* a failed sample (timeout, model error, anything else) is stored as ``status=error`` with
  its type and message and never stops the run; ``retry`` re-runs those only;
* judging is a step of its own: the dialogue is stored first, then judged through
  ``rejudge.judge_stored`` (``bench judge``'s code path); a judge that fails leaves the
  dialogue stored with ``judge_error``, and ``bench judge RUN_ID`` or a resume fills it later;
* a bounded pool of workers pulls from a queue: never an unbounded ``gather``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Protocol

from dxgraph.bench.classifier_hints import check_same_hints, is_classifier_spec
from dxgraph.bench.checks import check_images as _check_images, check_overlap as _check_overlap, train_overlap
from dxgraph.bench.grid import BenchConfig, GridSample, build_grid, shard_of
from dxgraph.bench.record import SampleResult
from dxgraph.errors import InputError, ModelError
from dxgraph.store import SampleRow, Store
from dxgraph.types import Case, Turn

__all__ = ["RunSummary", "Harness", "SimulatorHarness", "run_benchmark", "retry", "train_overlap", "KIND"]

KIND = "dialogue"


@dataclass(frozen=True)
class RunSummary:
    """What one call of ``run_benchmark``/``retry`` did, and where the whole run stands.

    ``samples_*`` count the whole run (all shards); ``ran``/``errors``/``skipped`` count this
    call only.
    """

    run_id: str
    status: str
    samples_total: int
    samples_done: int
    samples_failed: int
    ran: int
    errors: int
    skipped: int
    seconds: float
    shard: str | None = None
    judge_errors: int = 0


class Harness(Protocol):
    """Builds the agents of a run and plays one consultation (the runner's only seam)."""

    def load_cases(self) -> list[Case]: ...

    def temperaments(self) -> list[str]: ...

    async def consult(self, sample: GridSample) -> tuple[SampleResult, list[Turn]]: ...

    async def aclose(self) -> None: ...


class SimulatorHarness:
    """The real harness: cases, personas, rule or LLM agents from their specs.

    Chat models are built once per spec and shared by all consultations, so one endpoint's
    connection pool and concurrency limiter cover the whole run.

    Args:
        config: the run.
        models: ready-made chat models by spec (tests and demos pass ``ScriptedModel`` or a
            client on a mock transport); other specs are built by ``dxgraph.models.roles``.
    """

    def __init__(self, config: BenchConfig, models: dict[str, Any] | None = None):
        from dxgraph.bench.agents import AgentFactory
        from dxgraph.models.roles import ModelPool

        self.config = config
        self.agents = AgentFactory(ModelPool(by_spec=models), cases=config.knowledge_source())
        self._personas: dict[str, Any] | None = None
        self.hints: dict[str, list[str]] = {}

    # -- inputs
    def load_cases(self) -> list[Case]:
        from dxgraph.simulator.cases import load_cases

        cases = list(load_cases(source=self.config.cases, split=self.config.split))
        if self.config.hints and not is_classifier_spec(self.config.hints):
            from dxgraph.bench.protocol import read_hints

            self.hints = read_hints(self.config.hints, cases)
        return cases

    def check_grid(self, grid: list[GridSample]) -> None:
        """Every case a ``dialogue+hints`` sample plays has its hints; a classifier computes
        them here, for those cases only (all shards' alike: the grid is the whole run's)."""
        if self.config.hints:
            from dxgraph.bench.protocol import HINT_STRATEGY, check_hint_coverage, load_hints

            hinted = list({s.case.id: s.case for s in grid if s.strategy == HINT_STRATEGY}.values())
            if is_classifier_spec(self.config.hints):
                self.hints = load_hints(self.config.hints, hinted)
            check_hint_coverage(self.hints, [c.id for c in hinted], self.config.hints)

    def personas(self) -> dict[str, Any]:
        if self._personas is None:
            from dxgraph.simulator.personas import load_personas

            loaded = load_personas()
            self._personas = dict(loaded) if isinstance(loaded, dict) else {p.name: p for p in loaded}
        return self._personas

    def knowledge_cases(self) -> list[Case]:
        """The cases the run's doctors learned from: the rule doctor's train split."""
        if "rules" not in self.config.doctors:
            return []
        from dxgraph.simulator.cases import load_cases

        return list(load_cases(source=self.config.knowledge_source(), split="train"))

    def temperaments(self) -> list[str]:
        from dxgraph.simulator.personas import TEMPERAMENTS

        known = self.personas()
        asked = self.config.temperaments
        if asked == ["all"]:
            return [t for t in TEMPERAMENTS if t in known] + [t for t in known if t not in TEMPERAMENTS]
        for t in asked:
            if t not in known:
                raise InputError(f"unknown temperament {t!r}; use 'all' or some of {', '.join(known)}")
        return list(dict.fromkeys(asked))

    async def consult(self, sample: GridSample) -> tuple[SampleResult, list[Turn]]:
        from dxgraph.bench.dialogue import run_consultation

        case = sample.case
        res = await run_consultation(
            case, self.personas()[sample.temperament], self.agents.doctor(sample.doctor, sample.strategy),
            self.agents.patient(self.config.patient), None,
            max_turns=self.config.max_turns, strategy=sample.strategy, hints=self.hints.get(case.id, ()),
        )
        return SampleResult.from_consultation(case, res), list(res.turns)

    def judge(self):
        """The run's judge; the runner applies it to each stored dialogue."""
        return self.agents.judge(self.config.judge)

    async def aclose(self) -> None:
        await self.agents.aclose()


def _describe(exc: BaseException) -> str:
    """``Type: message (file:line)`` — enough to triage without a log file."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {msg}{where}" if msg else f"{type(exc).__name__}{where}"


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Progress:
    """A rich progress bar on a terminal, nothing otherwise."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.bar = None
        if enabled and total and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("errors {task.fields[errors]}"), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=False)
            # The first consultation loads the models and the rule doctor's knowledge base:
            # name that phase rather than sit at 0/N without a word.
            self.task = self.bar.add_task(f"{label}: loading models", total=total, errors=0)
            self.bar.start()
        self.label = label
        self.errors = 0

    def advance(self, ok: bool) -> None:
        self.errors += 0 if ok else 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, errors=self.errors, description=self.label)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


async def _run_samples(samples: list[GridSample], harness: Harness, store: Store, config: BenchConfig,
                       progress: bool) -> tuple[int, int]:
    queue: asyncio.Queue[GridSample] = asyncio.Queue()
    for s in samples:
        queue.put_nowait(s)
    bar = _Progress(progress, len(samples), f"run {config.run_id}")
    worker = _worker_name()
    counts = {"ran": 0, "errors": 0, "judge_errors": 0}
    judge = harness.judge() if hasattr(harness, "judge") else None  # a harness without one judges in consult

    async def one(sample: GridSample) -> None:
        start = time.perf_counter()
        turns: list[Turn] = []
        row = SampleRow(run_id=config.run_id, key=sample.key, case_id=sample.case.id,
                        temperament=sample.temperament, strategy=sample.strategy, doctor=sample.doctor,
                        worker=worker)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that lands as the inner call finishes, and a cancelled run would keep going.
            async with asyncio.timeout(config.sample_timeout_s):
                result, turns = await harness.consult(sample)
            row.status, row.result_json = "done", result.model_dump_json()
        except TimeoutError:
            row.status, row.error = "error", f"TimeoutError: sample exceeded {config.sample_timeout_s:g} s"
        except ModelError as exc:
            row.status, row.error = "error", _describe(exc)
        except Exception as exc:  # noqa: BLE001 - one bad sample must never stop a benchmark
            row.status, row.error = "error", _describe(exc)
        row.seconds = time.perf_counter() - start
        # The store is synchronous; a thread keeps the event loop serving other samples.
        await asyncio.to_thread(store.save_sample, row, turns)
        if judge is not None and row.status == "done":
            judged = await _judge_one(store, config, sample, judge)  # awaited before the += reads the count
            counts["judge_errors"] += not judged
        counts["ran"] += 1
        counts["errors"] += row.status != "done"
        bar.advance(row.status == "done")

    async def work() -> None:
        while True:
            try:
                sample = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(sample)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(config.concurrency, len(samples))):
                group.create_task(work())
    finally:
        bar.close()
    return counts["ran"], counts["errors"], counts["judge_errors"]


async def _judge_unjudged(mine: list[GridSample], harness: Harness, store: Store, config: BenchConfig) -> int:
    """A resume judges this shard's stored dialogues whose judge failed before; returns the
    number still unjudged. One at a time: a judge that was down is likely to fail again."""
    if not hasattr(harness, "judge"):
        return 0
    from dxgraph.bench.rejudge import unjudged

    pending = {r.key for r in store.samples(config.run_id, "done") if unjudged(SampleResult.from_json(r.result_json))}
    todo = [s for s in mine if s.key in pending]
    judge = harness.judge() if todo else None
    return sum([not await _judge_one(store, config, s, judge) for s in todo])


async def _judge_one(store: Store, config: BenchConfig, sample: GridSample, judge) -> bool:
    """Judge a stored dialogue; on failure keep it stored with the judge's error (False)."""
    from dxgraph.bench.rejudge import judge_stored, mark_unjudged

    try:
        async with asyncio.timeout(config.sample_timeout_s):
            await judge_stored(store, config.run_id, sample.key, sample.case, judge)
        return True
    except Exception as exc:  # noqa: BLE001 - the stored dialogue outlives any judge failure
        error = f"TimeoutError: judge exceeded {config.sample_timeout_s:g} s" if isinstance(exc, TimeoutError) \
            else _describe(exc)
        await asyncio.to_thread(mark_unjudged, store, config.run_id, sample.key, error)
        return False


def _open_run(config: BenchConfig, store: Store, harness: Harness) -> list[GridSample]:
    temperaments = harness.temperaments()
    grid = build_grid(config, harness.load_cases(), temperaments)
    if hasattr(harness, "check_grid"):
        harness.check_grid(grid)
    _check_images(grid)
    overlap = _check_overlap(config, grid, harness)
    identity = config.grid_identity(temperaments)
    existing = store.get_run(config.run_id)
    if existing is not None:
        stored = json.loads(existing.config_json or "{}")
        if existing.kind != KIND:
            raise InputError(f"run {config.run_id!r} is a {existing.kind!r} run, not a dialogue benchmark; "
                             "choose another --run-id")
        if stored.get("grid") != identity:
            old = stored.get("grid") or {}
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise InputError(f"run {config.run_id!r} exists with a different grid (differs in "
                             f"{', '.join(diff)}); resume with the same options or use a new --run-id")
    from dxgraph.bench.manifest import build_manifest
    from dxgraph.store.tables import utcnow

    cases = list({s.case.id: s.case for s in grid}.values())
    # Under 3mdbench a case's temperament is its own personality: list the ones played.
    played = temperaments if config.protocol == "dxgraph" else sorted({s.temperament for s in grid})
    hints = getattr(harness, "hints", None)
    manifest = build_manifest(config, cases, played, started_at=utcnow().isoformat(),
                              protocol=config.protocol, hints=hints)
    if existing is not None:
        check_same_hints(config.run_id, json.loads(existing.config_json or "{}"), manifest)
    # On a resume the stored manifest (the first start's) is kept: create_run returns the row.
    store.create_run(config.run_id, kind=KIND, samples_total=len(grid),
                     config={"config": config.model_dump(mode="json"), "grid": identity,
                             "keys_total": len(grid), "train_overlap": overlap, "manifest": manifest,
                             **({"hints_used": hints} if is_classifier_spec(config.hints) else {})})
    return grid


def _finish(run_id: str, store: Store, grid: list[GridSample]) -> tuple[str, int, int]:
    """Set complete/partial under the run row's lock, so the last shard to finish never
    leaves a complete run marked partial."""
    status, done, failed = store.settle_run_status(run_id, {s.key for s in grid})
    return status, len(done), len(failed)


def _mark_interrupted(config: BenchConfig, store: Store, grid: list[GridSample] | None) -> None:
    """Ctrl-C or cancellation: leave the run marked ``interrupted``, not ``running`` forever.

    Settled first under the run row's lock, so a run that is in fact complete stays
    complete. A shard leaves the status alone: other shards may still be live, and each
    settles the run again when it ends. A resume sets ``running`` again.
    """
    if grid is None or config.shard_spec().count > 1:
        return
    status, _, _ = store.settle_run_status(config.run_id, {s.key for s in grid})
    if status != "complete":
        store.set_run_status(config.run_id, "interrupted")


async def _execute(config: BenchConfig, store: Store, harness: Harness | None, progress: bool,
                   only_errors: bool) -> RunSummary:
    start = time.perf_counter()
    harness = harness or SimulatorHarness(config)
    grid: list[GridSample] | None = None
    try:
        grid = _open_run(config, store, harness)
        shard = config.shard_spec()
        mine = [s for s in grid if shard.count == 1 or shard_of(s.key, shard.count) == shard.index]
        done = store.sample_keys(config.run_id, "done")
        if only_errors:
            errored = store.sample_keys(config.run_id, "error")
            todo = [s for s in mine if s.key in errored and s.key not in done]
        else:
            todo = [s for s in mine if s.key not in done]
        ran, errors, judge_errors = await _run_samples(todo, harness, store, config, progress) if todo else (0, 0, 0)
        just_ran = {s.key for s in todo}
        judge_errors += await _judge_unjudged([s for s in mine if s.key not in just_ran], harness, store, config)
    except (asyncio.CancelledError, KeyboardInterrupt):
        _mark_interrupted(config, store, grid)
        raise
    finally:
        await harness.aclose()
    status, n_done, n_failed = _finish(config.run_id, store, grid)
    return RunSummary(run_id=config.run_id, status=status, samples_total=len(grid), samples_done=n_done,
                      samples_failed=n_failed, ran=ran, errors=errors, skipped=len(mine) - len(todo),
                      seconds=time.perf_counter() - start, shard=config.shard, judge_errors=judge_errors)


async def run_benchmark(config: BenchConfig, store: Store, *, progress: bool = True,
                        harness: Harness | None = None) -> RunSummary:
    """Create or resume a run and play every sample of this shard not yet done.

    Args:
        config: the run's grid and execution settings.
        store: where runs and samples live.
        progress: show a progress bar (only on a terminal).
        harness: agents and cases; the simulator's by default (tests pass their own).

    Raises:
        InputError: bad cases, temperaments or strategies, or the run id exists with a
            different grid.
    """
    return await _execute(config, store, harness, progress, only_errors=False)


async def retry(run_id: str, store: Store, *, concurrency: int | None = None, progress: bool = True,
                harness: Harness | None = None, sample_timeout_s: float | None = None) -> RunSummary:
    """Re-run the errored samples of a run with the configuration stored in it."""
    run = store.get_run(run_id)
    if run is None:
        known = ", ".join(r.id for r in store.list_runs(KIND)[:10]) or "none"
        raise InputError(f"no run {run_id!r} in the store {store.url!r} (runs: {known})")
    stored = json.loads(run.config_json or "{}").get("config")
    if not stored:
        raise InputError(f"run {run_id!r} has no stored benchmark config; it cannot be retried")
    updates: dict[str, Any] = {"shard": None}
    if concurrency is not None:
        updates["concurrency"] = concurrency
    if sample_timeout_s is not None:
        updates["sample_timeout_s"] = sample_timeout_s
    config = BenchConfig.model_validate({**stored, **updates})
    return await _execute(config, store, harness, progress, only_errors=True)
