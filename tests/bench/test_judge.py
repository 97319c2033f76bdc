"""The judge: table-based correctness (whole words), abstention wrong, rubric items."""

from __future__ import annotations

import pytest

from dxgraph.models.scripted import ScriptedModel
from dxgraph.bench.judge import RUBRIC_ITEMS, Judge, LLMJudge, Rubric, RuleJudge, score_diagnosis
from dxgraph.types import Case, Fact, FinalDiagnosis, Turn

CASE = Case(
    id="j1",
    chief_complaint="Itchy patches on my arms",
    facts=[
        Fact(id="f1", category="symptom", text="The patches itch a lot at night."),
        Fact(id="f2", category="history", text="I had asthma as a child."),
        Fact(id="f3", category="treatment", text="A moisturiser helped a little."),
    ],
    diagnosis="eczema",
    split="test",
)

TURNS = [
    Turn(index=0, role="patient", text="Itchy patches on my arms"),
    Turn(index=1, role="doctor", text="Have you had any skin problems before?"),
    Turn(index=2, role="patient", text="I had asthma as a child.", revealed_facts=["f2"]),
    Turn(index=3, role="doctor", text="My conclusion: eczema.", end=True),
]


async def test_exact_label_is_correct_and_abstention_is_wrong():
    ok, top3, pred, match, _ = await score_diagnosis(CASE, FinalDiagnosis(label="eczema", confidence=0.9))
    assert (ok, top3, pred, match) == (True, True, "eczema", "table")
    ok, top3, pred, match, _ = await score_diagnosis(CASE, FinalDiagnosis(label=None))
    assert (ok, top3, pred, match) == (False, False, None, "abstained")


async def test_wrong_label_with_truth_in_differential_is_top3_only():
    final = FinalDiagnosis(label="psoriasis", differential=["psoriasis", "eczema"])
    ok, top3, pred, _, _ = await score_diagnosis(CASE, final)
    assert not ok and top3 and pred == "psoriasis"


async def test_substring_never_matches():
    # "eczematous" contains "eczema" but is not the whole word; the table must not match it.
    ok, _, pred, match, _ = await score_diagnosis(CASE, FinalDiagnosis(label="eczematousness of unclear type"))
    assert not ok and pred is None and match == "unmatched"


async def test_llm_equivalence_only_when_table_has_no_match():
    model = ScriptedModel([{"same_condition": True, "reason": "synonym"}])
    judge = Judge(equivalence_model=model)
    res = await judge.evaluate(CASE, FinalDiagnosis(label="that itchy flexural thing"), TURNS)
    assert res.correct and res.match == "llm" and res.predicted_label == "eczema"
    assert len(model.calls) == 1
    res = await judge.evaluate(CASE, FinalDiagnosis(label="eczema"), TURNS)
    assert res.match == "table" and len(model.calls) == 1  # the table decided; no model call


async def test_rule_judge_scores_checkable_items_only():
    res = await RuleJudge().evaluate(CASE, FinalDiagnosis(label="eczema", basis="itch at night, flexures"), TURNS)
    assert set(res.rubric) == set(RUBRIC_ITEMS)
    assert res.rubric["medical_history"] == 1.0
    assert res.rubric["explains_basis"] == 1.0
    assert res.rubric["respect_empathy"] is None and res.rubric["overall"] is None
    bare = [TURNS[0], Turn(index=1, role="doctor", text="My conclusion: eczema.")]
    res = await RuleJudge().evaluate(CASE, FinalDiagnosis(label="eczema"), bare)
    assert res.rubric["medical_history"] == 0.0 and res.rubric["explains_basis"] == 0.0
    assert res.rubric["current_symptoms"] == 0.0


def _rubric(score: int, overall: str) -> dict:
    item = {"score": score, "reason": "r"}
    out = {k: item for k in RUBRIC_ITEMS if k != "overall"}
    out["overall"] = {"rating": overall, "reason": "r"}
    return out


async def test_llm_judge_uses_schema_and_maps_overall():
    model = ScriptedModel([_rubric(1, "satisfactory")])
    res = await LLMJudge(model).evaluate(CASE, FinalDiagnosis(label="eczema", basis="b"), TURNS)
    assert res.rubric["overall"] == 0.5 and res.rubric["treatment_plan"] == 1.0
    assert res.judge.startswith("llm:")
    sent = "\n".join(m.text for m in model.calls[0])
    assert "Have you had any skin problems before?" in sent


async def test_llm_judge_malformed_rubric_raises():
    model = ScriptedModel([{"medical_history": {"score": 3}}])
    with pytest.raises(Exception):
        await LLMJudge(model).evaluate(CASE, FinalDiagnosis(label="eczema"), TURNS)
    assert Rubric.model_json_schema()["required"]
