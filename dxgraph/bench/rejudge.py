"""Judging as a step of its own: score stored transcripts again with another judge, and
measure how far two judges agree.

``bench run`` still judges every consultation as it ends (stored as the sample's ``judge``,
named ``run`` here). ``judge_run`` adds a named judge's verdicts beside it (``judges``),
never overwriting one; ``agreement`` compares any two by Cohen's kappa on correctness and
on each rubric item, with 95 % bootstrap intervals over cases and the 2x2 confusion.
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
from dxgraph.types import Turn

__all__ = ["RUN_JUDGE", "judge_run", "judge_names", "verdicts", "agreement"]

RUN_JUDGE = "run"  # the verdict `bench run` stored with each sample


def _run_config(store: Store, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        known = ", ".join(r.id for r in store.list_runs()[:10]) or "none"
        raise InputError(f"no run {run_id!r} in the store {store.url!r} (runs: {known})")
    return json.loads(run.config_json or "{}")


def judge_names(store: Store, run_id: str) -> list[str]:
    """``run`` plus every judge added with ``bench judge``, in first-seen order."""
    names = [RUN_JUDGE]
    for row in store.samples(run_id, "done"):
        names += [n for n in SampleResult.from_json(row.result_json).judges if n not in names]
    return names


def verdicts(result: SampleResult, name: str) -> JudgeResult | None:
    return result.judge if name == RUN_JUDGE else result.judges.get(name)


async def judge_run(store: Store, run_id: str, judge, name: str, *, concurrency: int = 4) -> int:
    """Score every done sample of ``run_id`` with ``judge`` and store it as ``name``.

    Returns the number of samples judged. Refuses a name already used on the run.
    """
    stored = _run_config(store, run_id)
    if name in judge_names(store, run_id):
        raise InputError(f"run {run_id!r} already has a judge named {name!r}; judges are never overwritten, "
                         "choose another --name")
    from dxgraph.simulator.cases import load_cases

    source = (stored.get("config") or {}).get("cases", "bundled")
    cases = {c.id: c for c in load_cases(source=source, split=None)}
    rows = store.samples(run_id, "done")
    missing = sorted({r.case_id for r in rows} - set(cases))
    if missing:
        raise InputError(f"run {run_id!r}: case {missing[0]!r} is no longer in {source!r}; its transcript "
                         "cannot be judged against a label")
    gate = asyncio.Semaphore(concurrency)

    async def one(row) -> None:
        result = SampleResult.from_json(row.result_json)
        turns = [Turn(index=t.index, role=t.role, text=t.text) for t in store.turns(run_id, row.key)]
        async with gate:
            verdict = await judge.evaluate(cases[row.case_id], result.final, turns)

        def add(old: str) -> str:
            rec = SampleResult.from_json(old)
            if name in rec.judges:
                raise InputError(f"judge {name!r} was added to sample {row.key!r} meanwhile")
            return rec.model_copy(update={"judges": {**rec.judges, name: verdict}}).model_dump_json()

        await asyncio.to_thread(store.update_result, run_id, row.key, add)

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
