"""The consultation graph: bounded turns, end signals, persisted turns, plain-data state."""

from __future__ import annotations

import json

from dxgraph.agents.doctor import LLMDoctor
from dxgraph.models.scripted import ScriptedModel
from dxgraph.bench.dialogue import run_consultation
from dxgraph.bench.judge import RuleJudge
from dxgraph.simulator.patient import RulePatient
from dxgraph.simulator.patient_llm import LLMPatient
from dxgraph.telemetry import setup_tracing
from dxgraph.types import Case, Fact

CASE = Case(
    id="g1",
    chief_complaint="Itchy red patches on my arms.",
    facts=[
        Fact(id="itch", category="symptom", text="The patches itch a lot, worst at night."),
        Fact(id="asthma", category="history", text="I had asthma as a child."),
    ],
    diagnosis="eczema",
    split="test",
)


class _Persona:
    name = "neutral"


def _final(label="eczema"):
    return {"final": {"label": label, "confidence": 0.8, "differential": [label], "basis": "itch, asthma"}}


async def test_turn_limit_forces_a_final_diagnosis():
    model = ScriptedModel(lambda msgs: _final() if "time is over" in msgs[-1].text else {"question": "Does it itch?"})
    seen = []

    async def on_turn(turn):
        seen.append(turn)

    res = await run_consultation(CASE, _Persona(), LLMDoctor(model), RulePatient(), RuleJudge(),
                                 max_turns=3, on_turn=on_turn)
    assert res.ended_by == "turn_limit"
    assert [t.role for t in res.turns] == ["patient"] + ["doctor", "patient"] * 3 + ["doctor"]
    assert seen == res.turns and [t.index for t in res.turns] == list(range(len(res.turns)))
    assert res.final.label == "eczema" and res.judge.correct
    assert res.disclosed == {"itch": 1} and res.facts_elicited == 0.5
    assert res.input_tokens > 0 and all(t.latency_ms >= 0 for t in res.turns)


async def test_patient_end_signal_makes_the_doctor_conclude():
    doctor_model = ScriptedModel(lambda msgs: _final() if "time is over" in msgs[-1].text else {"question": "Anything else?"})
    patient_model = ScriptedModel([{"reply": "I must go now.", "revealed_fact_ids": [], "end_consultation": True}])
    res = await run_consultation(CASE, _Persona(), LLMDoctor(doctor_model), LLMPatient(patient_model), None)
    assert res.ended_by == "patient" and res.judge is None
    assert res.turns[-2].end and res.turns[-1].role == "doctor"


async def test_single_strategy_answers_once_and_spans_are_recorded():
    memory = setup_tracing("memory")
    model = ScriptedModel([_final("psoriasis")])
    res = await run_consultation(CASE, _Persona(), LLMDoctor(model, strategy="single"), RulePatient(),
                                 RuleJudge(), strategy="single")
    assert [t.role for t in res.turns] == ["patient", "doctor"] and res.ended_by == "doctor"
    assert not res.judge.correct and res.judge.predicted_label == "psoriasis"
    names = {s.name for s in memory.get_finished_spans()}
    assert {"consultation", "dialogue.doctor", "dialogue.judge"} <= names
    json.dumps(res.model_dump(mode="json"))  # plain data all the way
    setup_tracing("none")
