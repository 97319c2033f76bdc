"""The judge (3MDBench's Assessor Agent): was the diagnosis right, and how good was the talk.

Correctness goes through the versioned label table first (``labels.normalize_label`` and
``labels.find_labels``: whole words, never substrings), so the same answer is scored the
same way in every run; only when the table cannot place a free-text answer may an LLM be
asked whether it names the same condition. An abstention (``label=None``) is wrong, never
dropped, unlike 3MDBench, which left abstentions out of its denominators.

Consultation quality uses 3MDBench's eight rubric items. ``LLMJudge`` scores all of them
with a JSON-schema answer; ``RuleJudge`` scores the three a program can check (history
asked, symptoms/causes/treatments asked, basis explained) and leaves the rest ``None``.
Scores are in [0, 1]: yes = 1, no = 0; ``overall`` maps unsatisfactory/satisfactory/
excellent to 0/0.5/1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dxgraph.models.base import ChatModel, GenerateConfig, system, user
from dxgraph.simulator import labels as label_table
from dxgraph.types import Case, FinalDiagnosis, Turn

__all__ = [
    "RUBRIC_ITEMS",
    "RubricScore",
    "OverallScore",
    "Rubric",
    "JudgeResult",
    "Judge",
    "RuleJudge",
    "LLMJudge",
    "score_diagnosis",
    "transcript_text",
]

RUBRIC_ITEMS: tuple[str, ...] = (
    "medical_history",
    "current_symptoms",
    "explains_basis",
    "respect_empathy",
    "patient_wishes",
    "diagnostic_plan",
    "treatment_plan",
    "overall",
)

_RUBRIC_QUESTIONS = {
    "medical_history": "Did the doctor ask about the patient's medical history (past illnesses, "
    "medications, allergies, family history)?",
    "current_symptoms": "Did the doctor ask about the current symptoms, their possible causes "
    "and the treatments already tried?",
    "explains_basis": "Did the doctor explain what the conclusion is based on?",
    "respect_empathy": "Was the doctor respectful and empathetic?",
    "patient_wishes": "Did the doctor respect the patient's wishes and answer their concerns?",
    "diagnostic_plan": "Did the doctor propose a diagnostic plan (tests, examinations, referral)?",
    "treatment_plan": "Did the doctor propose a treatment plan?",
}
_OVERALL = {"unsatisfactory": 0.0, "satisfactory": 0.5, "excellent": 1.0}


class RubricScore(BaseModel):
    """One yes/no rubric item with the judge's short reason."""

    model_config = ConfigDict(extra="forbid")
    score: Literal[0, 1]
    reason: str = Field(default="", max_length=400)


class OverallScore(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal["unsatisfactory", "satisfactory", "excellent"]
    reason: str = Field(default="", max_length=400)


class Rubric(BaseModel):
    """The LLM judge's structured answer: 3MDBench's eight items."""

    model_config = ConfigDict(extra="forbid")
    medical_history: RubricScore
    current_symptoms: RubricScore
    explains_basis: RubricScore
    respect_empathy: RubricScore
    patient_wishes: RubricScore
    diagnostic_plan: RubricScore
    treatment_plan: RubricScore
    overall: OverallScore

    def scores(self) -> dict[str, float]:
        out = {k: float(getattr(self, k).score) for k in RUBRIC_ITEMS if k != "overall"}
        out["overall"] = _OVERALL[self.overall.rating]
        return out

    def reasons(self) -> dict[str, str]:
        return {k: getattr(self, k).reason for k in RUBRIC_ITEMS}


class _Equivalence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    same_condition: bool
    reason: str = ""


class JudgeResult(BaseModel):
    """What the judge concludes about one consultation.

    ``predicted_label`` is canonical (from the label table) or ``None`` when the doctor
    abstained or named something the table does not know; ``match`` says how correctness
    was decided (``table``, ``llm`` or ``abstained``/``unmatched``).
    """

    correct: bool
    top3_correct: bool
    predicted_label: str | None
    true_label: str | None
    match: str
    rubric: dict[str, float | None]
    rubric_reasons: dict[str, str] = Field(default_factory=dict)
    judge: str
    label_table_version: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


def _canonical(text: str | None) -> str | None:
    """The table's label for an answer: an exact synonym, else the one label it names."""
    if not text or not text.strip():
        return None
    label = label_table.normalize_label(text)
    if label is not None:
        return label
    found = list(dict.fromkeys(label_table.find_labels(text)))
    return found[0] if len(found) == 1 else None


async def score_diagnosis(
    case: Case, final: FinalDiagnosis, equivalence_model: ChatModel | None = None
) -> tuple[bool, bool, str | None, str, tuple[int, int]]:
    """Score a final diagnosis against the case's label.

    Returns:
        ``(correct, top3_correct, predicted_label, match, (input_tokens, output_tokens))``.
    """
    truth = _canonical(case.diagnosis) or case.diagnosis
    if final.label is None or not final.label.strip():
        return False, False, None, "abstained", (0, 0)
    predicted = _canonical(final.label)
    top3 = [predicted] + [_canonical(d) for d in final.differential]
    top3 = list(dict.fromkeys(x for x in top3 if x is not None))[:3]
    top3_ok = truth in top3
    if predicted is not None:
        ok = predicted == truth
        return ok, top3_ok or ok, predicted, "table", (0, 0)
    if equivalence_model is None:
        return False, top3_ok, None, "unmatched", (0, 0)
    # Only the free-text answer and the reference label go to the checker, nothing else.
    out = await equivalence_model.generate(
        [
            system(
                "You check whether two dermatological/medical diagnosis names refer to the "
                "same condition. Synonyms and lay terms count as the same; a broader or "
                "different condition does not."
            ),
            user(f"Answer: {final.label!r}\nReference: {case.diagnosis!r}\nSame condition?"),
        ],
        config=GenerateConfig(temperature=0.0, max_tokens=120),
        schema=_Equivalence,
    )
    same = bool(out.parsed and out.parsed.same_condition)
    usage = (out.usage.input_tokens, out.usage.output_tokens)
    return same, top3_ok or same, truth if same else None, "llm", usage


def transcript_text(turns: Sequence[Turn | dict]) -> str:
    """The consultation as ``ROLE: text`` lines (tool evidence included)."""
    lines = []
    for turn in turns:
        t = turn if isinstance(turn, Turn) else Turn.model_validate(turn)
        who = t.role.upper() if t.role != "tool" else f"TOOL {t.tool or ''}".strip()
        lines.append(f"{who}: {t.text}")
    return "\n".join(lines)


class Judge:
    """Correctness only; subclasses add a rubric.

    Args:
        equivalence_model: asked yes/no when the label table cannot place an answer; by
            default a different model from the doctor's.
    """

    spec = "labels"

    def __init__(self, equivalence_model: ChatModel | None = None):
        self.equivalence_model = equivalence_model

    async def rubric(
        self, case: Case, final: FinalDiagnosis, turns: Sequence[Turn]
    ) -> tuple[dict[str, float | None], dict[str, str], tuple[int, int]]:
        return {k: None for k in RUBRIC_ITEMS}, {}, (0, 0)

    async def evaluate(
        self, case: Case, final: FinalDiagnosis, turns: Sequence[Turn]
    ) -> JudgeResult:
        """Judge one finished consultation."""
        turns = [t if isinstance(t, Turn) else Turn.model_validate(t) for t in turns]
        ok, top3, predicted, match, (ti, to) = await score_diagnosis(
            case, final, self.equivalence_model
        )
        scores, reasons, (ri, ro) = await self.rubric(case, final, turns)
        return JudgeResult(
            correct=ok,
            top3_correct=top3,
            predicted_label=predicted,
            true_label=_canonical(case.diagnosis) or case.diagnosis,
            match=match,
            rubric=scores,
            rubric_reasons=reasons,
            judge=self.spec,
            label_table_version=str(getattr(label_table, "LABEL_TABLE_VERSION", "")),
            input_tokens=ti + ri,
            output_tokens=to + ro,
        )


_HISTORY_Q = re.compile(
    r"\b(before|previous(ly)?|past|history|medications?|medicines?|drugs?|allerg\w*|"
    r"family|conditions?|illness(es)?|diabet\w*|chronic|ever had)\b",
    re.I,
)
_SYMPTOM_Q = re.compile(
    r"\b(symptoms?|itch\w*|pain\w*|hurt\w*|burn\w*|sore|swell\w*|look|where|when|how long|"
    r"start\w*|feel\w*|fever|spread\w*)\b",
    re.I,
)
_CAUSE_Q = re.compile(
    r"\b(cause\w*|trigger\w*|expos\w*|contact|new (soap|product|cream)|worse|better|"
    r"after|work|pets?|travel\w*)\b",
    re.I,
)
_TREAT_Q = re.compile(r"\b(tried|treat\w*|cream|ointment|remed\w*|took|taken|apply\w*)\b", re.I)


class RuleJudge(Judge):
    """Scores what a program can check: questions asked (by the categories of the facts the
    patient disclosed and by question wording) and whether the conclusion has a basis.
    Empathy, wishes, plans and overall need a reader: they stay ``None``.
    """

    spec = "rules"

    async def rubric(self, case, final, turns):
        category = {f.id: f.category for f in case.facts}
        disclosed = {category.get(fid) for t in turns for fid in t.revealed_facts}
        asked = " ".join(t.text for t in turns if t.role == "doctor" and "?" in t.text)
        history = bool(disclosed & {"history", "medication"}) or bool(_HISTORY_Q.search(asked))
        aspects = [
            bool(disclosed & {"symptom", "onset", "location"}) or bool(_SYMPTOM_Q.search(asked)),
            "exposure" in disclosed or bool(_CAUSE_Q.search(asked)),
            "treatment" in disclosed or bool(_TREAT_Q.search(asked)),
        ]
        basis = len(final.basis.split()) >= 3
        scores: dict[str, float | None] = {k: None for k in RUBRIC_ITEMS}
        scores.update(
            medical_history=float(history),
            current_symptoms=round(sum(aspects) / len(aspects), 4),
            explains_basis=float(basis),
        )
        reasons = {
            "medical_history": "history/medication asked" if history else "no history question",
            "current_symptoms": f"{sum(aspects)}/3 of symptoms, causes, treatments asked",
            "explains_basis": "basis given" if basis else "no basis given",
        }
        return scores, reasons, (0, 0)


_RUBRIC_SYSTEM = (
    "You are a senior physician assessing a telemedicine consultation between a doctor and a "
    "patient. Score each item 1 (yes) or 0 (no) with a one-sentence reason, and rate the "
    "consultation overall as unsatisfactory, satisfactory or excellent. Judge only what is in "
    "the transcript.\nItems:\n"
    + "\n".join(f"- {k}: {q}" for k, q in _RUBRIC_QUESTIONS.items())
    + "\n- overall: unsatisfactory | satisfactory | excellent"
)


class LLMJudge(Judge):
    """All eight rubric items scored by a model with a JSON-schema answer.

    Args:
        model: the judge model (by default a different one from the doctor's).
        equivalence_model: for free-text answers the label table cannot place; defaults to
            ``model``.
    """

    def __init__(self, model: ChatModel, equivalence_model: ChatModel | None = None):
        super().__init__(equivalence_model or model)
        self.model = model
        self.spec = f"llm:{getattr(model, 'spec', '?')}"

    async def rubric(self, case, final, turns):
        conclusion = (
            f"Final diagnosis: {final.label or 'none (abstained)'}; confidence "
            f"{final.confidence:.2f}; differential: {', '.join(final.differential) or '-'}; "
            f"basis: {final.basis or '-'}"
        )
        out = await self.model.generate(
            [system(_RUBRIC_SYSTEM), user(f"{transcript_text(turns)}\n\n{conclusion}")],
            config=GenerateConfig(temperature=0.0, max_tokens=900),
            schema=Rubric,
        )
        rubric: Rubric = out.parsed
        return rubric.scores(), rubric.reasons(), (out.usage.input_tokens, out.usage.output_tokens)
