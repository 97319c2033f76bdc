"""Benchmark metrics with case-level bootstrap confidence intervals.

Why a case bootstrap: every case is run under five temperaments (and maybe several
strategies and doctors), so samples of one case are not independent. Resampling *cases*
(each drawn case brings all of its samples) gives honest intervals, and drawing the same
cases for two conditions gives paired differences whose spread is the spread of the
difference, not of each condition on its own.

Everything is vectorised: replicate ``r`` is a row of per-case draw counts, every metric is
a weighted sum over samples, so 1000 replicates cost a few matrix products.

An answer that names no known label is wrong in every accuracy and F1 figure, and is
counted by kind: ``other_rate`` (the doctor chose "other"), ``unparseable_rate`` (no usable
answer, or free text the label table cannot place) and ``abstention_rate`` (no answer).

A failed sample (errored, timed out) has no answer. The completed-sample figures leave it
out, and ``top1_accuracy_all_assigned`` counts it as wrong over every assigned sample, so a
doctor that crashes on hard cases cannot look better than one that answers them;
``failure_rate`` is the failures' share.

Macro-F1 averages over the labels *with support in the truth* (scikit-learn's ``labels=``
with the true labels, as 3MDBench scores): a label that is only ever predicted is a false
positive of the true label, not a class of its own with F1 = 0. In each bootstrap
replicate the average runs over the labels the replicate's truth contains, so a label
drawn out of the resample cannot drag the interval down. A label without support has no
F1 (``None``, ``support`` 0), never 0.

``f1_3mdbench`` is 3MDBench's headline: support-weighted F1 over the completed samples
that gave an answer (abstained and unparseable dropped, as its "none" answers were).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from dxgraph.bench.outcome import (  # noqa: F401 - re-exported
    ANSWER_KINDS,
    Outcome,
    answer_kind,
    failed_outcome,
    outcome_from_result,
    score_value as _score,
)

__all__ = [
    "Outcome",
    "outcome_from_result",
    "failed_outcome",
    "answer_kind",
    "ANSWER_KINDS",
    "compute_metrics",
    "group_metrics",
    "paired_differences",
    "difference",
    "confusion_matrix",
    "CORE_METRICS",
]

CORE_METRICS: tuple[str, ...] = (
    "top1_accuracy",
    "top1_accuracy_all_assigned",
    "top3_accuracy",
    "macro_f1",
    "weighted_f1",
    "f1_3mdbench",
    "failure_rate",
    "other_rate",
    "unparseable_rate",
    "abstention_rate",
    "mean_turns",
    "facts_elicited",
)
_ALL_ASSIGNED = ("top1_accuracy_all_assigned", "failure_rate")  # n counts failed samples too

# ----------------------------------------------------------------------------- core
class _Design:
    """Arrays of one set of outcomes, indexed for weighted sums."""

    def __init__(self, outcomes: Sequence[Outcome], labels: Sequence[str]):
        self.n = len(outcomes)
        self.labels = list(labels)
        index = {lab: i for i, lab in enumerate(self.labels)}
        n_lab = len(self.labels)
        self.correct = np.array([o.correct for o in outcomes], dtype=float)
        self.top3 = np.array([o.top3_correct for o in outcomes], dtype=float)
        kinds = np.array([o.answer for o in outcomes], dtype=object)
        self.done = (kinds != "failed").astype(float)
        self.kind = {k: (kinds == k).astype(float) for k in ANSWER_KINDS}
        # 3MDBench drops the "none" answers (abstained, unparseable) from its F1.
        self.answered = self.done * (1.0 - self.kind["abstained"] - self.kind["unparseable"])
        self.turns = np.array([o.turns for o in outcomes], dtype=float)
        self.facts = np.array([np.nan if o.facts_elicited is None else o.facts_elicited for o in outcomes])
        truth = np.zeros((self.n, n_lab))
        pred = np.zeros((self.n, n_lab))
        for i, o in enumerate(outcomes):
            if o.failed:
                continue
            truth[i, index[o.truth]] = 1.0
            if o.predicted is not None and o.predicted in index:
                pred[i, index[o.predicted]] = 1.0
        self.tp = truth * pred
        self.truth = truth
        self.pred = pred
        items = sorted({k for o in outcomes for k in o.rubric})
        self.rubric_items = items
        cells = [[_score(o.rubric.get(k)) for k in items] for o in outcomes]
        self.rubric = np.array([[np.nan if c is None else c for c in row] for row in cells],
                               dtype=float).reshape(self.n, len(items))


def _labels(outcomes: Iterable[Outcome]) -> list[str]:
    labs = set()
    for o in outcomes:
        if o.failed:
            continue
        labs.add(o.truth)
        if o.predicted is not None:
            labs.add(o.predicted)
    return sorted(labs)


def _weights(case_ids: Sequence[str], reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row 0 weighs every case once (the point estimate); rows 1.. are bootstrap draws."""
    cases = sorted(set(case_ids))
    col = {c: j for j, c in enumerate(cases)}
    sample_case = np.array([col[c] for c in case_ids], dtype=int)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(cases), np.full(len(cases), 1.0 / len(cases)), size=reps) if reps else \
        np.zeros((0, len(cases)))
    w_case = np.vstack([np.ones((1, len(cases))), draws])
    return w_case, sample_case


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _f1_parts(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-label F1 (NaN without support) and the macro / weighted means over supported labels."""
    fp, fn = predicted - tp, support - tp
    has_support = support > 0
    f1 = np.where(has_support, _safe_div(2 * tp, 2 * tp + fp + fn), np.nan)
    f1_z = np.nan_to_num(f1)
    macro = _safe_div(f1_z.sum(axis=1), has_support.sum(axis=1).astype(float))
    weighted = _safe_div((f1_z * support).sum(axis=1), support.sum(axis=1))
    return f1, np.stack([macro, weighted])


def _metric_arrays(d: _Design, w: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every metric for every replicate; ``w`` is (reps+1, n_samples). Also per-label F1.

    ``w`` weighs every assigned sample; ``wd`` only the completed ones.
    """
    wd = w * d.done
    assigned = w.sum(axis=1)
    total = wd.sum(axis=1)
    out = {
        "top1_accuracy": _safe_div(wd @ d.correct, total),
        "top1_accuracy_all_assigned": _safe_div(w @ d.correct, assigned),
        "failure_rate": _safe_div(w @ d.kind["failed"], assigned),
        "top3_accuracy": _safe_div(wd @ d.top3, total),
        "other_rate": _safe_div(wd @ d.kind["other"], total),
        "unparseable_rate": _safe_div(wd @ d.kind["unparseable"], total),
        "abstention_rate": _safe_div(wd @ d.kind["abstained"], total),
        "mean_turns": _safe_div(wd @ np.nan_to_num(d.turns), total),
    }
    facts_ok = ~np.isnan(d.facts) * d.done
    out["facts_elicited"] = _safe_div(wd @ np.where(facts_ok > 0, d.facts, 0.0), wd @ facts_ok)
    f1, (out["macro_f1"], out["weighted_f1"]) = _f1_parts(wd @ d.tp, wd @ d.truth, wd @ d.pred)
    wa = w * d.answered
    _, (_, out["f1_3mdbench"]) = _f1_parts(wa @ d.tp, wa @ d.truth, wa @ d.pred)
    for j, item in enumerate(d.rubric_items):
        col = d.rubric[:, j]
        ok = ~np.isnan(col)
        out[f"rubric.{item}"] = _safe_div(wd @ np.where(ok, col, 0.0), wd @ ok.astype(float))
    return out, f1


def _summary(arr: np.ndarray, n: int) -> dict[str, Any]:
    value = arr[0]
    boot = arr[1:]
    boot = boot[~np.isnan(boot)]
    if np.isnan(value):
        return {"value": None, "ci_low": None, "ci_high": None, "n": n}
    if boot.size == 0:
        lo = hi = float(value)
    else:
        lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"value": float(value), "ci_low": float(lo), "ci_high": float(hi), "n": n}


def group_metrics(outcomes: Sequence[Outcome], *, reps: int = 1000, seed: int = 0,
                  labels: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every metric of one group of outcomes as ``{name: {value, ci_low, ci_high, n}}``."""
    if not outcomes:
        return {}
    d = _Design(outcomes, labels or _labels(outcomes))
    w_case, sample_case = _weights([o.case_id for o in outcomes], reps, seed)
    arrays, _ = _metric_arrays(d, w_case[:, sample_case])
    n_done = int(d.done.sum())
    return {name: _summary(arr, d.n if name in _ALL_ASSIGNED else n_done) for name, arr in arrays.items()}


def _per_label(outcomes: Sequence[Outcome], reps: int, seed: int) -> dict[str, dict[str, Any]]:
    labels = _labels(outcomes)
    d = _Design(outcomes, labels)
    w_case, sample_case = _weights([o.case_id for o in outcomes], reps, seed)
    _, f1 = _metric_arrays(d, w_case[:, sample_case])
    result: dict[str, dict[str, Any]] = {}
    for j, lab in enumerate(labels):
        members = [o for o in outcomes if o.truth == lab and not o.failed]
        block = group_metrics(members, reps=reps, seed=seed) if members else {}
        for name in ("macro_f1", "weighted_f1", "f1_3mdbench", "top1_accuracy_all_assigned", "failure_rate"):
            block.pop(name, None)
        # Without support a label has no F1 (it was only ever predicted): shown as such, not as 0.
        block["f1"] = _summary(f1[:, j], len(members))
        block["support"] = len(members)
        block["predicted"] = sum(1 for o in outcomes if o.predicted == lab and not o.failed)
        result[lab] = block
    return result


def _difference(side_a: Sequence[Outcome], side_b: Sequence[Outcome], labels: Sequence[str],
                reps: int, seed: int) -> dict[str, dict[str, Any]]:
    """``A - B`` over the cases both sides share, one set of case draws for both; without
    shared cases the two sides are resampled independently (an unpaired interval)."""
    shared = sorted({o.case_id for o in side_a} & {o.case_id for o in side_b})
    if shared:
        keep = set(shared)
        side_a = [o for o in side_a if o.case_id in keep]
        side_b = [o for o in side_b if o.case_id in keep]
        w_case, _ = _weights(shared, reps, seed)
        col = {c: j for j, c in enumerate(shared)}
        w_a = w_case[:, [col[o.case_id] for o in side_a]]
        w_b = w_case[:, [col[o.case_id] for o in side_b]]
        n = len(shared)
    else:
        w_case, idx = _weights([o.case_id for o in side_a], reps, seed)
        w_a = w_case[:, idx]
        w_case, idx = _weights([o.case_id for o in side_b], reps, seed + 1)
        w_b = w_case[:, idx]
        n = len({o.case_id for o in side_a}) + len({o.case_id for o in side_b})
    arr_a, _ = _metric_arrays(_Design(side_a, labels), w_a)
    arr_b, _ = _metric_arrays(_Design(side_b, labels), w_b)
    result = {name: _summary(arr_a[name] - arr_b[name], n) for name in arr_a if name in arr_b}
    for block in result.values():
        block["paired"] = bool(shared)
    return result


def difference(side_a: Sequence[Outcome], side_b: Sequence[Outcome], *, reps: int = 1000,
               seed: int = 0) -> dict[str, dict[str, Any]]:
    """Every metric of ``A - B`` with a 95% interval, paired over shared cases when any.

    ``n`` counts the shared cases (paired) or all cases of both sides (unpaired).
    """
    if not side_a or not side_b:
        return {}
    return _difference(side_a, side_b, _labels([*side_a, *side_b]), reps, seed)


def paired_differences(outcomes: Sequence[Outcome], by: str, *, reps: int = 1000, seed: int = 0,
                       order: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``A - B`` for every pair of levels of ``by`` (``strategy``, ``temperament``, ``doctor``),
    over the cases both levels share, with one set of case draws for both sides.

    Returns ``{"A - B": {metric: {value, ci_low, ci_high, n}}}``; ``n`` counts shared cases.
    """
    levels = list(order) if order else sorted({getattr(o, by) for o in outcomes})
    levels = [lv for lv in levels if any(getattr(o, by) == lv for o in outcomes)]
    labels = _labels(outcomes)
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for a, b in combinations(levels, 2):
        side_a = [o for o in outcomes if getattr(o, by) == a]
        side_b = [o for o in outcomes if getattr(o, by) == b]
        if {o.case_id for o in side_a} & {o.case_id for o in side_b}:
            result[f"{a} - {b}"] = _difference(side_a, side_b, labels, reps, seed)
    return result


def confusion_matrix(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Counts of truth (rows) by answer (columns); "other", unparseable and abstained answers
    get a column each. Failed samples have no truth row: they are counted in ``failed``."""
    labels = _labels(outcomes)
    extra = {"other": "(other)", "unparseable": "(unparseable)", "abstained": "(abstained)"}
    cols = labels + list(extra.values())
    index = {lab: i for i, lab in enumerate(cols)}
    m = np.zeros((len(labels), len(cols)), dtype=int)
    for o in outcomes:
        if o.failed:
            continue
        col = o.predicted if o.predicted is not None else extra.get(o.answer, "(unparseable)")
        m[index[o.truth], index[col]] += 1
    return {"labels": labels, "columns": cols, "matrix": m.tolist(),
            "failed": sum(1 for o in outcomes if o.failed)}


def compute_metrics(outcomes: Sequence[Outcome], *, reps: int = 1000, seed: int = 0,
                    strategies: Sequence[str] | None = None,
                    temperaments: Sequence[str] | None = None) -> dict[str, Any]:
    """The full metrics block of a report.

    Args:
        outcomes: the finished samples of a run.
        reps: bootstrap replicates (seeded: the same data give the same intervals).
        strategies, temperaments: the order in which paired differences are taken.

    Returns:
        ``overall``, ``by_temperament``, ``by_strategy``, ``by_doctor``, ``by_label``
        (each metric ``{value, ci_low, ci_high, n}``), ``paired`` differences by strategy,
        temperament and doctor, ``confusion`` and the bootstrap settings.
    """
    outcomes = list(outcomes)
    out: dict[str, Any] = {"bootstrap": {"reps": reps, "seed": seed, "unit": "case", "ci": 0.95},
                           "n_samples": sum(1 for o in outcomes if not o.failed),
                           "n_failed": sum(1 for o in outcomes if o.failed),
                           "n_cases": len({o.case_id for o in outcomes})}
    if not outcomes:
        out.update(overall={}, by_temperament={}, by_strategy={}, by_doctor={}, by_label={},
                   paired={}, confusion={"labels": [], "columns": [], "matrix": []})
        return out
    labels = _labels(outcomes)
    out["overall"] = group_metrics(outcomes, reps=reps, seed=seed, labels=labels)
    for by, order in (("temperament", temperaments), ("strategy", strategies), ("doctor", None)):
        levels = list(order) if order else sorted({getattr(o, by) for o in outcomes})
        out[f"by_{by}"] = {lv: group_metrics([o for o in outcomes if getattr(o, by) == lv],
                                             reps=reps, seed=seed, labels=labels)
                           for lv in levels if any(getattr(o, by) == lv for o in outcomes)}
    out["by_label"] = _per_label(outcomes, reps, seed)
    out["paired"] = {
        "strategy": paired_differences(outcomes, "strategy", reps=reps, seed=seed, order=strategies),
        "temperament": paired_differences(outcomes, "temperament", reps=reps, seed=seed, order=temperaments),
        "doctor": paired_differences(outcomes, "doctor", reps=reps, seed=seed),
    }
    out["confusion"] = confusion_matrix(outcomes)
    return out
