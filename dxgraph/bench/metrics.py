"""Benchmark metrics with case-level bootstrap confidence intervals.

Why a case bootstrap: every case is run under five temperaments (and maybe several
strategies and doctors), so samples of one case are not independent. Resampling *cases*
(each drawn case brings all of its samples) gives honest intervals, and drawing the same
cases for two conditions gives paired differences whose spread is the spread of the
difference, not of each condition on its own.

Everything is vectorised: replicate ``r`` is a row of per-case draw counts, every metric is
a weighted sum over samples, so 1000 replicates cost a few matrix products.

An abstention (``predicted_label is None``) is a wrong answer in every accuracy and F1
figure, and is also reported on its own as ``abstention_rate``. Errored samples carry no
answer at all and are left out (they are counted as ``samples_failed`` in the report).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from dxgraph.bench.record import SampleResult

__all__ = [
    "Outcome",
    "outcome_from_result",
    "compute_metrics",
    "group_metrics",
    "paired_differences",
    "difference",
    "confusion_matrix",
    "CORE_METRICS",
]

CORE_METRICS: tuple[str, ...] = (
    "top1_accuracy",
    "top3_accuracy",
    "macro_f1",
    "weighted_f1",
    "abstention_rate",
    "mean_turns",
    "facts_elicited",
)
_ORDINAL = {
    "no": 0.0, "yes": 1.0, "false": 0.0, "true": 1.0,
    "unsatisfactory": 0.0, "satisfactory": 1.0, "excellent": 2.0,
}


@dataclass(frozen=True)
class Outcome:
    """One finished sample, reduced to what the metrics need.

    ``predicted`` is the label scored against ``truth``: the truth itself when the judge
    ruled the answer correct (so an LLM-judged synonym is not a false negative in F1),
    ``None`` for an abstention, else the judge's canonical reading of the answer.
    """

    key: str
    case_id: str
    temperament: str
    strategy: str
    doctor: str
    truth: str
    predicted: str | None
    correct: bool
    top3_correct: bool
    turns: float
    facts_elicited: float | None = None
    rubric: dict[str, float] = field(default_factory=dict)


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _ORDINAL.get(value.strip().lower())
    if isinstance(value, dict):  # {"score": 2, "rationale": "..."}
        return _score(value.get("score", value.get("value")))
    return None


def outcome_from_result(key: str, case_id: str, temperament: str, strategy: str, doctor: str,
                        result: SampleResult | str) -> Outcome:
    """Build an ``Outcome`` from the ``SampleResult`` the runner stores for a sample."""
    if not isinstance(result, SampleResult):
        result = SampleResult.from_json(result)
    judge = result.judge
    # The judge's canonical truth keeps a synonym in a case file from splitting a class.
    truth = str((judge.true_label if judge else None) or result.truth)
    correct = bool(judge and judge.correct)
    predicted = truth if correct else (judge.predicted_label if judge else None)
    rubric = {}
    for item, value in (judge.rubric if judge else {}).items():
        s = _score(value)
        if s is not None:
            rubric[str(item)] = s
    return Outcome(
        key=key, case_id=case_id, temperament=temperament, strategy=strategy, doctor=doctor,
        truth=truth, predicted=predicted or None, correct=correct,
        top3_correct=bool(judge and judge.top3_correct) or correct,
        turns=float(result.turns),
        facts_elicited=float(result.facts_elicited),
        rubric=rubric,
    )


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
        self.abstain = np.array([o.predicted is None for o in outcomes], dtype=float)
        self.turns = np.array([o.turns for o in outcomes], dtype=float)
        self.facts = np.array([np.nan if o.facts_elicited is None else o.facts_elicited for o in outcomes])
        truth = np.zeros((self.n, n_lab))
        pred = np.zeros((self.n, n_lab))
        for i, o in enumerate(outcomes):
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


def _metric_arrays(d: _Design, w: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every metric for every replicate; ``w`` is (reps+1, n_samples). Also per-label F1."""
    total = w.sum(axis=1)
    out = {
        "top1_accuracy": _safe_div(w @ d.correct, total),
        "top3_accuracy": _safe_div(w @ d.top3, total),
        "abstention_rate": _safe_div(w @ d.abstain, total),
        "mean_turns": _safe_div(w @ d.turns, total),
    }
    facts_ok = ~np.isnan(d.facts)
    out["facts_elicited"] = _safe_div(w @ np.where(facts_ok, d.facts, 0.0), w @ facts_ok.astype(float))
    tp = w @ d.tp
    support = w @ d.truth
    predicted = w @ d.pred
    fp, fn = predicted - tp, support - tp
    present = (tp + fp + fn) > 0
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    f1_z = np.where(present, np.nan_to_num(f1), 0.0)
    out["macro_f1"] = _safe_div(f1_z.sum(axis=1), present.sum(axis=1).astype(float))
    out["weighted_f1"] = _safe_div((f1_z * support).sum(axis=1), support.sum(axis=1))
    for j, item in enumerate(d.rubric_items):
        col = d.rubric[:, j]
        ok = ~np.isnan(col)
        out[f"rubric.{item}"] = _safe_div(w @ np.where(ok, col, 0.0), w @ ok.astype(float))
    per_label_f1 = np.where(present, f1, np.nan)
    return out, per_label_f1


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
    return {name: _summary(arr, d.n) for name, arr in arrays.items()}


def _per_label(outcomes: Sequence[Outcome], reps: int, seed: int) -> dict[str, dict[str, Any]]:
    labels = _labels(outcomes)
    d = _Design(outcomes, labels)
    w_case, sample_case = _weights([o.case_id for o in outcomes], reps, seed)
    _, f1 = _metric_arrays(d, w_case[:, sample_case])
    result: dict[str, dict[str, Any]] = {}
    for j, lab in enumerate(labels):
        members = [o for o in outcomes if o.truth == lab]
        block = group_metrics(members, reps=reps, seed=seed) if members else {}
        block.pop("macro_f1", None)
        block.pop("weighted_f1", None)
        block["f1"] = _summary(f1[:, j], len(members))
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
    """Counts of truth (rows) by answer (columns); abstentions get their own column."""
    labels = _labels(outcomes)
    cols = labels + ["(abstained)"]
    index = {lab: i for i, lab in enumerate(cols)}
    m = np.zeros((len(labels), len(cols)), dtype=int)
    for o in outcomes:
        m[index[o.truth], index[o.predicted if o.predicted is not None else "(abstained)"]] += 1
    return {"labels": labels, "columns": cols, "matrix": m.tolist()}


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
                           "n_samples": len(outcomes), "n_cases": len({o.case_id for o in outcomes})}
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
