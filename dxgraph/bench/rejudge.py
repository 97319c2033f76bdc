"""Judging as a step of its own: score stored transcripts, again with another judge, and
measure how far two judges agree.

``bench run`` stores every dialogue first and then judges it with ``judge_stored`` (the
verdict is the sample's ``judge``, named ``run`` here); a judge that fails leaves the
dialogue stored with ``judge_error`` set, and ``judge_run(..., name="run")`` (``bench judge
RUN_ID``) fills those later. ``judge_run`` with another name adds that judge's verdicts
beside the run's (``judges``), never overwriting one; ``agreement`` compares any two by
Cohen's kappa on correctness and on each rubric item, with 95 % bootstrap intervals over
cases and the 2x2 confusion.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np

from dxgraph.bench.judge import JudgeResult
from dxgraph.bench.record import SampleResult
from dxgraph.errors import InputError
from dxgraph.store import Store
from dxgraph.telemetry import get_tracer
from dxgraph.types import Turn

__all__ = ["RUN_JUDGE", "run_judge_spec", "judge_run", "judge_stored", "mark_unjudged", "stored_turns", "unjudged", "judge_names", "verdicts",
           "agreement"]

RUN_JUDGE = "run"  # the verdict `bench run` stored with each sample


def _run_config(store: Store, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        known = ", ".join(r.id for r in store.list_runs()[:10]) or "none"
        raise InputError(f"no run {run_id!r} in the store {store.url!r} (runs: {known})")
    return json.loads(run.config_json or "{}")


def run_judge_spec(store: Store, run_id: str) -> str:
    """The judge spec the run was started with (``rules`` for runs stored without one)."""
    return str((_run_config(store, run_id).get("config") or {}).get("judge") or "rules")


def judge_names(store: Store, run_id: str) -> list[str]:
    """``run`` plus every judge added with ``bench judge``, in first-seen order."""
    names = [RUN_JUDGE]
    for row in store.samples(run_id, "done"):
        names += [n for n in SampleResult.from_json(row.result_json).judges if n not in names]
    return names


def verdicts(result: SampleResult, name: str) -> JudgeResult | None:
    return result.judge if name == RUN_JUDGE else result.judges.get(name)


def stored_turns(store: Store, run_id: str, key: str) -> list[Turn]:
    """A sample's transcript as stored, with the facts each reply disclosed (the rule judge's
    rubric reads them)."""
    return [Turn(index=t.index, role=t.role, text=t.text, revealed_facts=json.loads(t.revealed_json or "[]"))
            for t in store.turns(run_id, key)]


def unjudged(result: SampleResult) -> bool:
    """Stored without the run's verdict because its judge failed."""
    return result.judge is None and bool(result.judge_error)


async def judge_stored(store: Store, run_id: str, key: str, case, judge, name: str = RUN_JUDGE) -> bool:
    """Judge one stored dialogue and write the verdict as ``name`` (``run``: the sample's own
    ``judge``, clearing ``judge_error``). The transcript and answer are read back from the
    store, so a run's judging and ``bench judge`` score exactly what is stored.

    Returns False when the sample is not done; exceptions of the judge propagate, the stored
    dialogue untouched.
    """
    row = store.sample(run_id, key)
    if row is None or row.status != "done":
        return False
    result = SampleResult.from_json(row.result_json)
    turns = await asyncio.to_thread(stored_turns, store, run_id, key)
    with get_tracer().start_as_current_span("bench.judge") as span:
        span.set_attribute("dxgraph.judge_name", name)
        verdict = await judge.evaluate(case, result.final, turns)

    def add(old: str) -> str:
        rec = SampleResult.from_json(old)
        if name == RUN_JUDGE:
            if rec.judge is not None:
                raise InputError(f"sample {key!r} was judged meanwhile")
            return rec.model_copy(update={"judge": verdict, "judge_error": None}).model_dump_json()
        if name in rec.judges:
            raise InputError(f"judge {name!r} was added to sample {key!r} meanwhile")
        return rec.model_copy(update={"judges": {**rec.judges, name: verdict}}).model_dump_json()

    return await asyncio.to_thread(store.update_result, run_id, key, add)


def mark_unjudged(store: Store, run_id: str, key: str, error: str) -> None:
    """Record why the run's judge could not score a stored dialogue (kept for ``bench judge``)."""
    def change(old: str) -> str:
        rec = SampleResult.from_json(old)
        return rec.model_copy(update={"judge_error": error}).model_dump_json()

    store.update_result(run_id, key, change)


async def judge_run(store: Store, run_id: str, judge, name: str, *, concurrency: int = 4) -> int:
    """Score the done samples of ``run_id`` with ``judge`` and store the verdicts as ``name``.

    ``name="run"`` fills the run's own verdict where its judge failed (``judge_error``);
    any other name judges every done sample and is refused when already used on the run.
    Returns the number of samples judged.
    """
    stored = _run_config(store, run_id)
    rows = store.samples(run_id, "done")
    if name == RUN_JUDGE:
        rows = [r for r in rows if unjudged(SampleResult.from_json(r.result_json))]
    elif name in judge_names(store, run_id):
        raise InputError(f"run {run_id!r} already has a judge named {name!r}; judges are never overwritten, "
                         "choose another --name")
    from dxgraph.simulator.cases import load_cases

    source = (stored.get("config") or {}).get("cases", "bundled")
    cases = {c.id: c for c in load_cases(source=source, split=None)} if rows else {}
    missing = sorted({r.case_id for r in rows} - set(cases))
    if missing:
        raise InputError(f"run {run_id!r}: case {missing[0]!r} is no longer in {source!r}; its transcript "
                         "cannot be judged against a label")
    gate = asyncio.Semaphore(concurrency)

    async def one(row) -> None:
        async with gate:
            await judge_stored(store, run_id, row.key, cases[row.case_id], judge, name)

    async with asyncio.TaskGroup() as group:
        for row in rows:
            group.create_task(one(row))
    return len(rows)


def _kappa_ci(a: list, b: list, cases: list[str], reps: int, seed: int) -> dict[str, Any]:
    from sklearn.metrics import cohen_kappa_score

    def kappa(x, y) -> float:
        if len(set(x) | set(y)) < 2:
            return float("nan") if set(x) != set(y) else 1.0  # both constant and equal: full agreement
        return float(cohen_kappa_score(x, y))

    point = kappa(a, b)
    ids = sorted(set(cases))
    by_case: dict[str, list[int]] = {c: [] for c in ids}
    for i, c in enumerate(cases):
        by_case[c].append(i)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(reps):
        idx = [i for c in rng.choice(ids, size=len(ids)) for i in by_case[c]]
        boot.append(kappa([a[i] for i in idx], [b[i] for i in idx]))
    boot_arr = np.array([v for v in boot if not np.isnan(v)])
    lo, hi = (np.percentile(boot_arr, [2.5, 97.5]) if boot_arr.size else (float("nan"),) * 2)
    agree = float(np.mean([x == y for x, y in zip(a, b)])) if a else float("nan")
    clean = (lambda v: None if v is None or np.isnan(v) else round(float(v), 4))
    return {"kappa": clean(point), "ci_low": clean(lo), "ci_high": clean(hi), "agreement": clean(agree), "n": len(a)}


def agreement(store: Store, run_id: str, judge_a: str, judge_b: str, *, reps: int = 500,
              seed: int = 0) -> dict[str, Any]:
    """Cohen's kappa of two judges on correctness and each rubric item (95 % case bootstrap)."""
    _run_config(store, run_id)
    names = judge_names(store, run_id)
    for name in (judge_a, judge_b):
        if name not in names:
            raise InputError(f"run {run_id!r} has no judge {name!r} (judges: {', '.join(names)})")
    pairs = []
    for row in store.samples(run_id, "done"):
        rec = SampleResult.from_json(row.result_json)
        va, vb = verdicts(rec, judge_a), verdicts(rec, judge_b)
        if va is not None and vb is not None:
            pairs.append((row.case_id, va, vb))
    cases = [c for c, _, _ in pairs]
    out: dict[str, Any] = {"run_id": run_id, "a": judge_a, "b": judge_b, "samples": len(pairs),
                           "bootstrap": {"reps": reps, "seed": seed, "unit": "case"}}
    ca = [bool(a.correct) for _, a, _ in pairs]
    cb = [bool(b.correct) for _, _, b in pairs]
    out["correct"] = _kappa_ci(ca, cb, cases, reps, seed)
    out["correct"]["confusion"] = {f"a={x} b={y}": sum(1 for p, q in zip(ca, cb) if (p, q) == (x, y))
                                   for x in (True, False) for y in (True, False)}
    items = sorted({k for _, a, b in pairs for k in (a.rubric.keys() & b.rubric.keys())})
    out["rubric"] = {}
    for item in items:
        kept = [(c, a.rubric[item], b.rubric[item]) for c, a, b in pairs
                if a.rubric.get(item) is not None and b.rubric.get(item) is not None]
        if kept:
            out["rubric"][item] = _kappa_ci([str(x) for _, x, _ in kept], [str(y) for _, _, y in kept],
                                            [c for c, _, _ in kept], reps, seed)
    return out
