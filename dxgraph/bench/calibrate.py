"""Fit a workflow's weights and threshold on a labelled calibration set.

The workflow is run on every row of ``labels.csv`` (the format of ``evaluate.py``). Each
indicator's pass/fail is a feature (pass = 1; fail or unavailable = 0), and a logistic
regression (scikit-learn, ``class_weight="balanced"`` so a rare outcome is not ignored, L2
with ``C=1`` so a handful of rows cannot produce huge weights) is fitted to the labels.

The weighted decision of the assessor is ``score = sum(w_i * pass_i) / sum(w_i)`` over the
available indicators, positive when ``score >= threshold``. With every indicator available
the regression is positive when ``b + sum(c_i * x_i) >= 0``, i.e. when
``sum(c_i * x_i) / sum(c_i) >= -b / sum(c_i)``; so ``w_i = c_i`` and
``threshold = -b / sum(c_i)`` (clipped to [0, 1]) reproduce it exactly, and with some
indicators unavailable the assessor's renormalisation is the natural extension.

Coefficients are clipped at ``MIN_WEIGHT`` (a small positive number): a negative weight would
say that meeting a guideline criterion argues *against* the diagnosis, which is a sign of a
noisy or too small calibration set rather than medicine; the clipped indicator still shows in
the evidence table but barely moves the score. The fitted (unclipped) coefficients are kept
in the ``calibration`` block for review.

Labels are read only here, after the runs; nothing of them reaches a tool or a model.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dxgraph.errors import InputError
from dxgraph.types import Diagnosis
from dxgraph.bench.evaluate import binary_metrics, read_labels
from dxgraph.workflows.schema import Decision, Workflow

__all__ = ["calibrate_workflow", "apply_decision", "bump_version", "dump_workflow", "MIN_WEIGHT", "MIN_ROWS",
           "MIN_PER_CLASS", "MIN_AVAILABLE_SHARE", "L2_C"]

MIN_WEIGHT = 0.01
"""Smallest weight written: fitted coefficients below it (including negative ones) are raised to it."""
MIN_ROWS = 10
"""Fewer labelled rows than this cannot support a fit of even two weights."""
MIN_PER_CLASS = 5
"""Each label (0 and 1) needs at least this many rows: a balanced fit on 1 positive is noise."""
MIN_AVAILABLE_SHARE = 0.5
"""An indicator fitted at all must be available on at least this share of rows (and on at
least ``MIN_ROWS``): an unavailable row counts as a fail, so a mostly unavailable indicator
would get a weight that measures its failures, not the criterion."""
L2_C = 1.0
"""Inverse L2 strength of the logistic regression (scikit-learn's ``C``)."""


def bump_version(version: str) -> str:
    """``"1.0"`` -> ``"1.0-cal1"``; ``"1.0-cal1"`` -> ``"1.0-cal2"``."""
    m = re.fullmatch(r"(.*)-cal(\d+)", version)
    return f"{m[1]}-cal{int(m[2]) + 1}" if m else f"{version}-cal1"


def apply_decision(wf: Workflow, dx: Diagnosis) -> Diagnosis:
    """Re-apply ``wf``'s weights and decision to the evidence of an earlier run (no tool runs again)."""
    from dxgraph.agents.assessor import assess
    from dxgraph.agents.planner import compile_plan

    weights = {i.id: i.weight for i in wf.indicators}
    results = [r.model_copy(update={"weight": weights.get(r.id, r.weight)}) for r in dx.indicators]
    return assess(compile_plan(wf), results, seconds=dx.seconds, trace_id=dx.trace_id)


def _features(wf: Workflow, dxs: list[Diagnosis]) -> np.ndarray:
    ids = [i.id for i in wf.indicators]
    x = np.zeros((len(dxs), len(ids)), dtype=float)
    for r, dx in enumerate(dxs):
        by_id = {i.id: i for i in dx.indicators}
        for c, ind in enumerate(ids):
            res = by_id.get(ind)
            x[r, c] = 1.0 if res is not None and res.status == "ok" and res.passed else 0.0
    return x


def _check_available(wf: Workflow, dxs: list[Diagnosis], data_dir: str | Path) -> None:
    """Refuse a fit on indicators that were unavailable on most rows (see ``MIN_AVAILABLE_SHARE``).

    An indicator unavailable on every row is left to the caller's ``not_fitted`` warning
    (typically a tool that is not configured, such as the VLM); unless none is available at all.
    """
    n = len(dxs)
    need = max(MIN_ROWS, math.ceil(MIN_AVAILABLE_SHARE * n))
    fitted = 0
    for ind in wf.indicators:
        results = [r for dx in dxs for r in dx.indicators if r.id == ind.id]
        available = sum(1 for r in results if r.status == "ok")
        if available == 0:
            continue
        fitted += 1
        if available < need:
            reasons = Counter(r.error or r.status for r in results if r.status != "ok").most_common(1)
            why = f"; most common reason: {reasons[0][0][:160]}" if reasons else ""
            raise InputError(
                f"{str(data_dir)!r}: indicator {ind.id!r} was available on only {available} of {n} rows; calibration "
                f"needs it on at least {need} (half the rows and at least {MIN_ROWS}){why}"
            )
    if fitted == 0:
        raise InputError(f"{str(data_dir)!r}: no indicator of {wf.id!r} was available on any of the {n} rows, "
                         "so there is nothing to fit; run 'dxgraph evaluate' on the folder to see why")


def _metrics(wf: Workflow, dxs: list[Diagnosis], labels: list[int]) -> dict[str, Any]:
    """As ``dxgraph evaluate`` counts them: over determinate outcomes, with their share as ``coverage``."""
    kept = [(dx, y) for dx, y in zip(dxs, labels) if dx.outcome != wf.outcomes.indeterminate]
    preds = [1 if dx.outcome == wf.outcomes.positive else 0 for dx, _ in kept]
    scores = [dx.score if dx.score is not None else 0.0 for dx, _ in kept]
    metrics = binary_metrics(preds, [y for _, y in kept], scores)
    return {**metrics, "coverage": len(kept) / len(dxs) if dxs else None}


async def _run_all(wf: Workflow, rows: list[dict[str, Any]], runner, concurrency: int) -> list[Diagnosis]:
    from dxgraph.agents.diagnose import run_workflow

    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(row: dict[str, Any]) -> Diagnosis:
        async with sem:
            return await run_workflow(wf, row["images"], runner=runner)

    return list(await asyncio.gather(*(one(r) for r in rows)))


async def calibrate_workflow(wf: Workflow, data_dir: str | Path, *, runner=None,
                             concurrency: int = 2) -> tuple[Workflow, dict[str, Any]]:
    """Fit weights and threshold of ``wf`` on ``data_dir/labels.csv``; return the new version and a report.

    Args:
        wf: the workflow to calibrate (any decision method; the result is ``weighted``).
        data_dir: a folder with ``labels.csv`` and its images, *not* the set you report on.
        runner: the tool runner (default: the process runner with the disk cache).
        concurrency: images run at once.

    Returns:
        ``(new_workflow, report)``; the report holds n, the coefficients, intercept, weights,
        threshold and the training-set metrics before and after (optimistic by construction:
        measure held-out accuracy with ``dxgraph evaluate`` on another folder).

    Raises:
        InputError: no labels.csv, fewer than ``MIN_ROWS`` rows, labels other than 0/1,
            fewer than ``MIN_PER_CLASS`` rows of a class, or an indicator available on too
            few rows (``MIN_AVAILABLE_SHARE``); checked before anything is fitted.
    """
    from sklearn.linear_model import LogisticRegression

    rows = read_labels(data_dir, wf)
    labels = [r["label"] for r in rows]
    bad = sorted({y for y in labels if y not in (0, 1)})
    if bad:
        raise InputError(f"{str(data_dir)!r}: labels must be 0 or 1 for calibration, found {bad[0]!r}")
    if len(rows) < MIN_ROWS:
        raise InputError(f"{str(data_dir)!r} has {len(rows)} labelled rows; calibration needs at least {MIN_ROWS}")
    n_pos = sum(labels)
    if min(n_pos, len(labels) - n_pos) < MIN_PER_CLASS:
        raise InputError(f"{str(data_dir)!r} has {n_pos} positive (label 1) and {len(labels) - n_pos} negative "
                         f"(label 0) rows; calibration needs at least {MIN_PER_CLASS} of each")

    before = await _run_all(wf, rows, runner, concurrency)
    _check_available(wf, before, data_dir)
    x, y = _features(wf, before), np.asarray(labels)
    lr = LogisticRegression(C=L2_C, class_weight="balanced", max_iter=1000)
    lr.fit(x, y)
    coef = [float(c) for c in lr.coef_[0]]
    intercept = float(lr.intercept_[0])
    weights = [round(max(MIN_WEIGHT, c), 4) for c in coef]
    threshold = round(float(np.clip(-intercept / sum(weights), 0.0, 1.0)), 4)

    ids = [i.id for i in wf.indicators]
    # The regression fits one weight per indicator and so already discounts correlated ones
    # (vCDR and rim-to-disc): the fitted draft replaces the hand-set groups.
    indicators = [ind.model_copy(update={"weight": w, "group": None}) for ind, w in zip(wf.indicators, weights)]
    draft = wf.model_copy(update={
        "version": bump_version(wf.version), "indicators": indicators,
        "decision": Decision(method="weighted", threshold=threshold, min_available=wf.decision.min_available,
                             min_coverage=wf.decision.min_coverage),
    })
    after = [apply_decision(draft, dx) for dx in before]
    m_before, m_after = _metrics(wf, before, labels), _metrics(draft, after, labels)
    unavailable = {i: int(sum(1 for dx in before for r in dx.indicators if r.id == i and r.status != "ok")) for i in ids}
    block = {
        "data": str(Path(data_dir).resolve()),
        "n": len(rows),
        "n_positive": int(y.sum()),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "from_version": wf.version,
        "method": f"logistic regression on indicator pass/fail (scikit-learn, class_weight=balanced, L2 C={L2_C}); "
                  f"weights = coefficients clipped at {MIN_WEIGHT}; threshold = -intercept / sum(weights)",
        "intercept": round(intercept, 6),
        "coefficients": {i: round(c, 6) for i, c in zip(ids, coef)},
        "unavailable": unavailable,
        "not_fitted": [i for i in ids if unavailable[i] == len(rows)],
        "training_balanced_accuracy": _round(m_after["balanced_accuracy"]),
        "training_balanced_accuracy_before": _round(m_before["balanced_accuracy"]),
    }
    new_wf = Workflow.model_validate(draft.model_dump() | {"calibration": block})
    report = {
        "workflow": wf.id, "version": new_wf.version, "data": str(data_dir), "n": len(rows),
        "n_positive": int(y.sum()), "coefficients": block["coefficients"], "intercept": block["intercept"],
        "weights": dict(zip(ids, weights)), "threshold": threshold, "unavailable": unavailable,
        "not_fitted": block["not_fitted"], "before": m_before, "after": m_after,
    }
    return new_wf, report


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def dump_workflow(wf: Workflow, *, header: str = "") -> str:
    """A workflow as YAML text (keys in schema order, defaults left out), with an optional comment header."""
    data = wf.model_dump(mode="json", exclude_defaults=True)
    data["version"] = wf.version  # always shown, even when it is the default
    data["decision"] = wf.decision.model_dump(mode="json", exclude_none=True)
    order = list(Workflow.model_fields)
    body = yaml.safe_dump({k: data[k] for k in order if k in data}, sort_keys=False, allow_unicode=True, width=100)
    lines = "".join(f"# {ln}\n" if ln else "#\n" for ln in header.splitlines())
    return lines + body
