"""One benchmark sample reduced to what the metrics need: ``Outcome`` and how a stored
``SampleResult`` (or a failed sample) becomes one, with its answer's kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dxgraph.bench.record import SampleResult

__all__ = ["ANSWER_KINDS", "Outcome", "answer_kind", "failed_outcome", "outcome_from_result", "score_value"]

ANSWER_KINDS: tuple[str, ...] = ("label", "other", "unparseable", "abstained", "failed")
_ORDINAL = {
    "no": 0.0, "yes": 1.0, "false": 0.0, "true": 1.0,
    "unsatisfactory": 0.0, "satisfactory": 1.0, "excellent": 2.0,
}


@dataclass(frozen=True)
class Outcome:
    """One finished sample, reduced to what the metrics need.

    ``predicted`` is the label scored against ``truth``: the truth itself when the judge
    ruled the answer correct (so an LLM-judged synonym is not a false negative in F1),
    ``None`` when the answer names no known label, else the judge's canonical reading.
    ``answer`` is one of ``ANSWER_KINDS``; a ``failed`` outcome (``failed_outcome``) has no
    truth in the F1 tables and counts only in the all-assigned figures.
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
    answer: str = ""

    def __post_init__(self) -> None:
        if not self.answer:  # built without a kind: no label is an abstention
            object.__setattr__(self, "answer", "abstained" if self.predicted is None else "label")

    @property
    def failed(self) -> bool:
        return self.answer == "failed"


def failed_outcome(key: str, case_id: str, temperament: str, strategy: str, doctor: str) -> Outcome:
    """An errored sample: wrong in the all-assigned accuracy, absent from the rest."""
    return Outcome(key=key, case_id=case_id, temperament=temperament, strategy=strategy, doctor=doctor,
                   truth="", predicted=None, correct=False, top3_correct=False, turns=float("nan"),
                   facts_elicited=None, answer="failed")


_UNPARSEABLE_BASIS = "no usable answer"


def answer_kind(result: SampleResult) -> str:
    """``label``, ``other``, ``unparseable`` or ``abstained`` for a completed sample."""
    judge = result.judge
    if judge is not None and judge.correct:
        return "label"
    raw = (result.final.label or "").strip()
    if raw.lower() == "other":
        return "other"
    if not raw:
        return "unparseable" if result.final.basis.startswith(_UNPARSEABLE_BASIS) else "abstained"
    if judge is not None and judge.predicted_label is None:
        return "unparseable"  # free text the label table (and any equivalence judge) could not place
    return "label"


def score_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _ORDINAL.get(value.strip().lower())
    if isinstance(value, dict):  # {"score": 2, "rationale": "..."}
        return score_value(value.get("score", value.get("value")))
    return None


def outcome_from_result(key: str, case_id: str, temperament: str, strategy: str, doctor: str,
                        result: SampleResult | str, judge_name: str | None = None) -> Outcome:
    """Build an ``Outcome`` from the ``SampleResult`` the runner stores for a sample.

    ``judge_name``: score with a judge added by ``bench judge`` instead of the run's own.
    """
    if not isinstance(result, SampleResult):
        result = SampleResult.from_json(result)
    if judge_name not in (None, "run"):
        result = result.model_copy(update={"judge": result.judges.get(judge_name)})
    elif result.judge is None and result.judge_error:
        # Stored but not judged (the judge failed): no verdict to score, so it counts like a
        # failed sample until `bench judge RUN_ID` fills it, never as a wrong answer.
        return failed_outcome(key, case_id, temperament, strategy, doctor)
    judge = result.judge
    # The judge's canonical truth keeps a synonym in a case file from splitting a class.
    truth = str((judge.true_label if judge else None) or result.truth)
    correct = bool(judge and judge.correct)
    predicted = truth if correct else (judge.predicted_label if judge else None)
    rubric = {}
    for item, value in (judge.rubric if judge else {}).items():
        s = score_value(value)
        if s is not None:
            rubric[str(item)] = s
    return Outcome(
        key=key, case_id=case_id, temperament=temperament, strategy=strategy, doctor=doctor,
        truth=truth, predicted=predicted or None, correct=correct,
        top3_correct=bool(judge and judge.top3_correct) or correct,
        turns=float(result.turns),
        facts_elicited=float(result.facts_elicited),
        rubric=rubric, answer=answer_kind(result),
    )
