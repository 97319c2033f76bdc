"""Patient-fidelity metrics per temperament and doctor-side effects against neutral."""

from __future__ import annotations

from types import SimpleNamespace

from dxgraph.bench.fidelity import fidelity_html, fidelity_markdown, patient_fidelity
from dxgraph.bench.judge import JudgeResult
from dxgraph.bench.record import SampleResult
from dxgraph.types import Disclosure, FinalDiagnosis


def _row(case, temperament, disclosures, correct=True, ended_by="doctor", facts=0.5):
    judge = JudgeResult(correct=correct, top3_correct=correct, predicted_label="eczema" if correct else "acne",
                        true_label="eczema", match="table", rubric={}, judge="rules")
    result = SampleResult(truth="eczema", final=FinalDiagnosis(label="eczema"), judge=judge,
                          disclosures=disclosures, ended_by=ended_by, facts_elicited=facts, turns=len(disclosures))
    return SimpleNamespace(case_id=case, temperament=temperament, result_json=result.model_dump_json())


def test_fidelity_counts_what_the_records_say():
    sanguine = [Disclosure(asked=["a"], direct=["a"], volunteered=["b"], words=10, digressions=1),
                Disclosure(asked=["c"], words=6)]
    choleric = [Disclosure(asked=["a"], withheld=["b"], words=3), Disclosure(words=4, end_request=True)]
    melancholic = [Disclosure(asked=["a"], severity={"a": "amplified"}, distractors=["x"], words=12)]
    rows = [_row(c, "sanguine", sanguine) for c in ("c1", "c2")]
    rows += [_row(c, "choleric", choleric, correct=False, ended_by="patient") for c in ("c1", "c2")]
    rows += [_row(c, "melancholic", melancholic) for c in ("c1", "c2")]
    rows += [_row(c, "neutral", [Disclosure(asked=["a"], words=4)]) for c in ("c1", "c2")]
    rep = patient_fidelity(rows, reps=200)
    f = rep["fidelity"]
    assert f["sanguine"]["facts_per_turn"]["value"] == 1.5
    assert f["sanguine"]["volunteered_share"]["value"] == round(1 / 3, 4)
    assert f["sanguine"]["direct_share"]["value"] == round(1 / 3, 4)
    assert f["sanguine"]["digression_rate"]["value"] == 0.5 and f["sanguine"]["words_per_turn"]["value"] == 8
    assert f["choleric"]["patient_ended"]["value"] == 1.0 and f["neutral"]["patient_ended"]["value"] == 0.0
    assert f["choleric"]["withheld_per_turn"]["value"] == 0.5
    assert f["melancholic"]["distractor_rate"]["value"] == 1.0 and f["melancholic"]["severity_share"]["value"] == 1.0
    assert f["neutral"]["volunteered_share"]["value"] == 0.0 and f["neutral"]["label_leaks"]["value"] == 0.0
    for block in f.values():
        for v in block.values():
            assert v["ci_low"] <= v["value"] <= v["ci_high"]
    assert rep["doctor"]["choleric"]["top1_accuracy"]["value"] == 0.0
    diff = rep["vs_control"]["choleric - neutral"]["top1_accuracy"]
    assert diff["value"] == -1.0 and diff["n"] == 2
    assert "neutral - neutral" not in rep["vs_control"]
    text = fidelity_markdown(rep)
    assert "| choleric |" in text and "volunteered_share" in text
    assert "Patient fidelity by temperament" in fidelity_html(rep)


def test_rows_stored_before_disclosure_records_give_no_figures_not_zeros():
    old = SampleResult.from_json('{"truth": "eczema", "final": {"label": "eczema"}}')
    assert old.disclosures == []
    rep = patient_fidelity([SimpleNamespace(case_id="c1", temperament="neutral", result_json=old.model_dump_json())],
                           reps=50)
    assert rep["fidelity"]["neutral"]["facts_per_turn"]["value"] is None
    assert rep["fidelity"]["neutral"]["patient_ended"]["value"] is None
    assert "n/a" in fidelity_markdown(rep)


async def test_the_dialogue_records_each_patient_turn_disclosure_in_the_sample():
    from dxgraph.agents.baselines import KnowledgeBase, RuleDoctor
    from dxgraph.bench.dialogue import run_consultation
    from dxgraph.simulator.cases import load_cases
    from dxgraph.simulator.patient import RulePatient
    from dxgraph.simulator.personas import load_personas

    case = load_cases("bundled", split="test")[0]
    doctor = RuleDoctor(KnowledgeBase.build(load_cases(split="train")))
    res = await run_consultation(case, load_personas()["sanguine"], doctor, RulePatient(), seed=1)
    sample = SampleResult.from_consultation(case, res)
    replies = [t for t in res.turns if t.role == "patient"][1:]
    assert len(sample.disclosures) == len(replies) > 0
    assert all(t.disclosure is not None for t in replies)
    told = {fid for d in sample.disclosures for fid in (*d.asked, *d.volunteered)}
    assert told == set(res.disclosed)
    assert SampleResult.from_json(sample.model_dump_json()) == sample
