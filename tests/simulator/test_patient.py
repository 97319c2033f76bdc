"""Patients: fact-gated disclosure, explicit end signal, no label in any prompt."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from dxgraph.models.scripted import ScriptedModel
from dxgraph.models.embeddings import cosine_matrix, get_embedder
from dxgraph.simulator.patient import RulePatient, first_person, split_questions
from dxgraph.simulator.patient_llm import HumanPatient, LLMPatient
from dxgraph.types import Case, Fact

CASE = Case(
    id="p1",
    age=34,
    sex="female",
    chief_complaint="I have itchy red patches on my arms.",
    facts=[
        Fact(id="itch", category="symptom", text="The patches itch a lot, worst at night."),
        Fact(id="where", category="location", text="The patches are in the creases of my elbows."),
        Fact(id="asthma", category="history", text="I had asthma as a child."),
        Fact(id="cream", category="treatment", text="A moisturiser helped a little."),
    ],
    visual_findings="Ill-defined red scaly patches in the antecubital fossae.",
    diagnosis="eczema",
    differential=["psoriasis", "allergic contact dermatitis"],
    split="test",
)


class _Persona:
    name = "choleric"
    symptom_description = "short and blunt"
    asking_questions = "demands answers"
    communication_style = "impatient"
    attitude_to_treatment = "wants a quick fix"
    emotional_involvement = "irritated"
    templates = {"opening": ["Look, {complaint}"], "answer": ["{answer} Can we hurry?"],
                 "unknown": ["No idea."], "farewell": ["Fine."]}


def test_embeddings_are_unit_and_cached():
    emb = get_embedder()
    a = emb.embed(["Does it itch?", "Where is the rash?"])
    assert a.shape == (2, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    calls = emb.calls
    b = emb.embed(["Where is the rash?"])
    assert emb.calls == calls and np.allclose(b[0], a[1])
    sims = cosine_matrix(emb.embed(["Does it itch?"]), emb.embed(["The skin itches badly.", "I live in Paris."]))
    assert sims[0, 0] > sims[0, 1]


def test_split_questions_and_first_person():
    assert split_questions("Thanks. Does it itch? Where is it? Take care.") == ["Does it itch?", "Where is it?"]
    assert split_questions("Thank you, that is all.") == []
    assert first_person("The patient has had a rash on her arm") == "I have had a rash on my arm."


async def test_rule_patient_answers_only_what_is_asked_in_persona_voice():
    p = RulePatient()
    opening = p.reset(CASE, _Persona(), seed=1)
    assert opening.text == "Look, I have itchy red patches on my arms."
    reply = await p.step("Does it itch?")
    assert reply.revealed == ["itch"] and not reply.end
    assert reply.text.endswith("Can we hurry?") and "itch" in reply.text
    assert p.disclosed == {"itch": 1}
    reply = await p.step("Have you had asthma or other illnesses before?")
    assert "asthma" in reply.revealed and "where" not in reply.revealed
    assert p.disclosed["asthma"] == 2
    reply = await p.step("Do you own a car?")
    assert reply.revealed == [] and reply.text.startswith("No idea.")


async def test_rule_patient_ends_when_nothing_is_asked_and_is_deterministic():
    texts = []
    for _ in range(2):
        p = RulePatient()
        p.reset(CASE, _Persona(), seed=7)
        texts.append((await p.step("Where on your body is it?")).text)
        end = await p.step("My conclusion: eczema. Take care.")
        assert end.end and end.revealed == []
    assert texts[0] == texts[1]


async def test_rule_patient_never_says_the_label():
    p = RulePatient(threshold=-1.0, max_facts=10)  # tells everything it can
    p.reset(CASE, _Persona())
    reply = await p.step("Tell me everything. What is wrong? What is the diagnosis?")
    assert "eczema" not in reply.text.lower()


async def test_rule_patient_before_reset_is_an_input_error():
    from dxgraph.errors import InputError

    with pytest.raises(InputError):
        await RulePatient().step("Does it itch?")


async def test_llm_patient_prompt_has_facts_but_never_the_label():
    model = ScriptedModel([
        {"reply": "Yes, at night mostly.", "revealed_fact_ids": ["itch", "made-up"], "end_consultation": False},
        {"reply": "Thanks, bye.", "revealed_fact_ids": [], "end_consultation": True},
    ])
    p = LLMPatient(model)
    opening = p.reset(CASE, _Persona(), seed=3)
    assert "itchy red patches" in opening.text
    r1 = await p.step("Does it itch?")
    assert r1.revealed == ["itch"] and not r1.end  # unknown ids are dropped
    r2 = await p.step("It is eczema. Goodbye.")
    assert r2.end and p.disclosed == {"itch": 1}
    first = model.calls[0]
    system_text = first[0].text
    assert "impatient" in system_text and "The patches itch a lot" not in system_text
    turn_text = first[-1].text  # this turn's released facts travel with the doctor's message
    assert "The patches itch a lot" in turn_text and "asthma" not in turn_text
    for messages in model.calls[:1]:
        for m in messages:
            for hidden in ("eczema", "psoriasis", "allergic contact dermatitis"):
                assert hidden not in m.text.lower()


async def test_llm_patient_end_is_the_field_not_a_word():
    model = ScriptedModel([{"reply": "BREAK goodbye end", "revealed_fact_ids": [], "end_consultation": False}])
    p = LLMPatient(model)
    p.reset(CASE, _Persona())
    assert not (await p.step("Anything else?")).end


async def test_human_patient_waits_for_typed_text():
    p = HumanPatient(timeout_s=2)
    p.reset(CASE, None, opening="Hi, my arm itches")
    task = asyncio.create_task(p.step("Since when?"))
    await asyncio.sleep(0.01)
    p.submit("Two weeks", end=False)
    reply = await task
    assert reply.text == "Two weeks" and reply.revealed == [] and p.disclosed == {}
    quiet = HumanPatient(timeout_s=0.05)
    quiet.reset(None)
    assert (await quiet.step("Hello?")).end


async def test_llm_patient_wire_schema_offers_only_this_cases_fact_ids():
    model = ScriptedModel([{"reply": "Yes.", "revealed_fact_ids": ["itch"], "end_consultation": False}])
    p = LLMPatient(model)
    p.reset(CASE, _Persona())
    await p.step("Does it itch?")
    schema = model.schemas[0].model_json_schema()
    assert schema["properties"]["revealed_fact_ids"]["items"] == {"enum": ["asthma", "cream", "itch", "where"]}
    assert set(schema["required"]) == {"reply", "revealed_fact_ids", "end_consultation"}
    assert schema["properties"]["reply"]["minLength"] == 1
    bare = Case(id="p2", chief_complaint="A sore.", diagnosis="abscess", split="test")
    p.reset(bare, _Persona())
    second = ScriptedModel([{"reply": "No.", "revealed_fact_ids": [], "end_consultation": False}])
    p.model = second
    await p.step("Anything else?")
    assert second.schemas[0].model_json_schema()["properties"]["revealed_fact_ids"]["maxItems"] == 0
