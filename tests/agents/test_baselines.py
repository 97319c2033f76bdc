"""The rule doctor: train-only knowledge, information-gain questions, never reads the label."""

from __future__ import annotations


import pytest

from dxgraph.agents.baselines import KnowledgeBase, RuleDoctor
from dxgraph.agents.doctor import CaseView
from dxgraph.errors import InputError
from dxgraph.simulator.cases import load_cases
from dxgraph.bench.dialogue import run_consultation
from dxgraph.bench.judge import RuleJudge
from dxgraph.simulator.patient import MATCH_THRESHOLD, RulePatient, tune_match_threshold
from dxgraph.simulator.personas import load_personas
from dxgraph.types import Turn


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase.build(load_cases(split="train"))


def test_test_cases_are_refused(kb):
    with pytest.raises(InputError, match="train split only"):
        KnowledgeBase.build(load_cases(split="test")[:3])


def test_match_threshold_is_the_train_tuned_value():
    assert abs(tune_match_threshold(load_cases(split="train")) - MATCH_THRESHOLD) <= 0.03


def test_bank_is_generated_and_deduplicated(kb):
    assert len(kb.questions) > 20 and len(set(kb.questions)) == len(kb.questions)
    assert "Where on your body is it?" in kb.questions
    assert kb.outcome_loglik.shape == (len(kb.questions), len(kb.case_label), len(kb.labels))


async def test_first_question_maximises_information_gain(kb):
    case = load_cases(split="test")[0]
    doctor = RuleDoctor(kb)
    view = CaseView.from_case(case)
    p, _ = doctor.posterior(view, [Turn(index=0, role="patient", text=case.chief_complaint)])
    q, gain = doctor.next_question(p, [])
    assert gain > 0
    # Asking the same question again is never chosen.
    q2, _ = doctor.next_question(p, [kb.questions[q]])
    assert q2 != q


async def test_never_reads_the_label(kb):
    persona = load_personas()["neutral"]
    for case in load_cases(split="test")[:4]:
        wrong = "acne" if case.diagnosis != "acne" else "warts"
        runs = []
        for c in (case, case.model_copy(update={"diagnosis": wrong, "differential": [wrong]})):
            res = await run_consultation(c, persona, RuleDoctor(kb), RulePatient(), None, seed=1)
            runs.append((res.final, [t.text for t in res.turns]))
        assert runs[0] == runs[1]


@pytest.mark.slow
async def test_accuracy_well_above_chance(kb):
    cases = load_cases(split="test")
    persona = load_personas()["neutral"]
    judge = RuleJudge()
    correct = 0
    for case in cases:
        res = await run_consultation(case, persona, RuleDoctor(kb), RulePatient(), judge,
                                     strategy="dialogue+image")
        correct += res.judge.correct
        assert res.final.basis and len(res.final.differential) == 3
    assert correct / len(cases) >= 0.5


def test_a_repeated_answer_is_counted_once(kb):
    case = load_cases(split="test")[0]
    doctor = RuleDoctor(kb)
    view = CaseView.from_case(case)
    answer = case.facts[0].text
    opening = Turn(index=0, role="patient", text=case.chief_complaint)

    def turns(n):
        out = [opening]
        for i in range(n):
            out += [Turn(index=2 * i + 1, role="doctor", text="Tell me more?"),
                    Turn(index=2 * i + 2, role="patient", text=answer)]
        return out

    once, _ = doctor.posterior(view, turns(1))
    thrice, contributions = doctor.posterior(view, turns(3))
    assert abs(once - thrice).max() < 1e-9
    assert abs(contributions[1][1]).max() > 0 and abs(contributions[-1][1]).max() == 0


def test_posterior_leaves_the_consulted_train_case_out(kb):
    """Leave-one-out: a train case's posterior is the one a base without it would give."""
    train = load_cases(split="train")
    case = train[5]
    without = KnowledgeBase.build([c for c in train if c.id != case.id], embedder=kb.embedder)
    assert without.labels == kb.labels  # every label keeps another train case
    transcript = [Turn(index=0, role="patient", text=case.chief_complaint),
                  Turn(index=1, role="doctor", text="Tell me more."),
                  Turn(index=2, role="patient", text=" ".join(f.text for f in case.facts[:3]))]
    view = CaseView.from_case(case, "dialogue+image")
    full = RuleDoctor(kb)
    assert full.own_cases(view).tolist() == [train.index(case)]
    p_full, _ = full.posterior(view, transcript)
    p_without, _ = RuleDoctor(without).posterior(view, transcript)
    assert p_full == pytest.approx(p_without, abs=1e-9)
    # A test case is not in the base: nothing is left out.
    assert full.own_cases(CaseView.from_case(load_cases(split="test")[0])).size == 0
