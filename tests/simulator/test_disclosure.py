"""The disclosure policy: every knob changes what the doctor can learn, on fixed seeds."""

from __future__ import annotations

import pytest

from dxgraph.simulator import labels as label_table
from dxgraph.simulator.cases import load_cases
from dxgraph.simulator.disclosure import bend_severity, worry_candidates
from dxgraph.simulator.patient import RulePatient
from dxgraph.simulator.personas import TEMPERAMENTS, load_personas
from dxgraph.types import Case, Fact

CASE = Case(
    id="d1", age=40, sex="male", chief_complaint="I have a rash on my legs.",
    facts=[
        Fact(id="itch", category="symptom", text="The rash itches a lot, worst at night."),
        Fact(id="scale", category="symptom", text="The spots are covered in silvery flakes."),
        Fact(id="sore", category="symptom", text="The skin is sometimes painful when I walk."),
        Fact(id="where", category="location", text="The spots are on both shins."),
        Fact(id="since", category="onset", text="It started three weeks ago."),
        Fact(id="meds", category="medication", text="I take no regular medicines."),
    ],
    diagnosis="psoriasis", differential=["eczema", "tinea corporis"], split="test",
)
SCRIPT = ["What symptoms do you have?", "Where is it?", "When did it start?", "Does it itch?",
          "Are you taking any medicines?", "Does it itch?"]
PERSONAS = load_personas()


def persona(**knobs):
    """The neutral control with some knobs turned."""
    base = PERSONAS["neutral"]
    return base.model_copy(update={"behaviour": base.behaviour.model_copy(update=knobs)})


async def consult(p, case=CASE, seed=0, script=SCRIPT, worries=None):
    patient = RulePatient(worries=worries)
    patient.reset(case, p, seed)
    replies = []
    for q in script:
        r = await patient.step(q)
        replies.append(r)
        if r.end:
            break
    return patient, replies


async def test_same_seed_same_consultation_different_seeds_differ():
    p = PERSONAS["sanguine"]
    _, a = await consult(p, seed=1)
    _, b = await consult(p, seed=1)
    assert [(r.text, r.revealed, r.disclosure) for r in a] == [(r.text, r.revealed, r.disclosure) for r in b]
    texts = {tuple(r.text for r in (await consult(p, seed=s))[1]) for s in range(2, 7)}
    assert len(texts) > 1


async def test_neutral_control_tells_matched_facts_verbatim_and_nothing_else():
    patient, replies = await consult(PERSONAS["neutral"])
    for r in replies:
        d = r.disclosure
        assert not d.volunteered and not d.distractors and not d.severity and not d.withheld and not d.end_request
        assert r.revealed == d.asked
    assert "The rash itches a lot, worst at night." in replies[0].text


async def test_volunteer_knob_adds_unasked_facts():
    _, off = await consult(persona(volunteer=0.0))
    _, on = await consult(persona(volunteer=1.0))
    assert not any(r.disclosure.volunteered for r in off)
    first = on[0].disclosure
    assert first.volunteered and set(first.volunteered) <= set(on[0].revealed)
    assert not set(first.volunteered) & set(first.asked)


async def test_direct_only_knob_withholds_what_only_the_topic_asked():
    _, off = await consult(persona(direct_only=False))
    _, on = await consult(persona(direct_only=True))
    assert off[0].revealed  # "What symptoms do you have?" asks the symptom topic
    assert set(on[0].revealed) < set(off[0].revealed) or not on[0].revealed
    for r in on:
        assert set(r.revealed) <= set(r.disclosure.direct)
    assert any(r.disclosure.withheld for r in on)


async def test_cut_short_knob_stops_after_the_first_fact():
    _, off = await consult(persona(verbosity=3, cut_short=0.0))
    _, on = await consult(persona(verbosity=3, cut_short=1.0))
    assert len(off[0].revealed) > 1
    assert len(on[0].revealed) == 1 and on[0].revealed[0] == off[0].revealed[0]
    assert set(on[0].disclosure.withheld) == set(off[0].revealed[1:])


@pytest.mark.parametrize("mode, mark, word", [("minimise", "minimised", "not that bad"),
                                              ("amplify", "amplified", "worse and worse")])
async def test_severity_knob_bends_the_text_and_keeps_the_fact_id(mode, mark, word):
    _, off = await consult(persona(severity="none", severity_rate=1.0))
    _, on = await consult(persona(severity=mode, severity_rate=1.0))
    assert word not in off[0].text and not off[0].disclosure.severity
    assert word in on[0].text
    assert on[0].revealed == off[0].revealed  # same facts disclosed, in other words
    assert on[0].disclosure.severity == {fid: mark for fid in on[0].revealed}


def test_severity_transformation_softens_and_amplifies_words():
    assert bend_severity("The rash itches a lot, worst at night.", "minimise").startswith(
        "The rash itches a little, a bit more noticeable at night.")
    assert "all the time" in bend_severity("The skin is sometimes painful.", "amplify")
    assert "what feels like forever" in bend_severity("It started 3 days ago.", "amplify")


async def test_worry_knob_adds_distractors_recorded_as_non_facts():
    fear = "My joints ache every morning."
    _, off = await consult(persona(worry=0.0), worries=[fear])
    patient, on = await consult(persona(worry=1.0), worries=[fear])
    assert not any(r.disclosure.distractors for r in off)
    first = on[0]
    assert first.disclosure.distractors == ["My joints ache every morning."]
    assert "My joints ache every morning." in first.text
    assert set(first.revealed) == set(first.disclosure.asked)  # a worry is never a fact id
    assert set(patient.disclosed) <= {f.id for f in CASE.facts}


def test_worries_come_from_other_labels_and_never_from_the_case():
    complaints = {"eczema": ["The skin weeps clear fluid."], "psoriasis": ["Own complaint."],
                  "acne": ["Pimples on the chin."]}
    assert worry_candidates(CASE, complaints) == ["The skin weeps clear fluid."]  # the differential first
    lone = CASE.model_copy(update={"differential": []})
    assert worry_candidates(lone, complaints) == ["Pimples on the chin.", "The skin weeps clear fluid."]


async def test_digression_knob_adds_asides_without_facts():
    _, off = await consult(persona(digression=0.0))
    _, on = await consult(persona(digression=1.0), script=SCRIPT[:1])
    aside = PERSONAS["sanguine"].model_copy(
        update={"behaviour": PERSONAS["sanguine"].behaviour.model_copy(update={"digression": 1.0, "volunteer": 0.0})})
    _, talk = await consult(aside, script=SCRIPT[:1])
    assert not any(r.disclosure.digressions for r in off)
    assert on[0].disclosure.digressions == 0  # the neutral persona has no asides to say
    assert talk[0].disclosure.digressions == 1
    assert talk[0].revealed == talk[0].disclosure.asked


async def test_patience_knob_ends_early_against_a_doctor_that_repeats_itself():
    repeat = ["Does it itch?"] * 8
    _, off = await consult(persona(patience=None), script=repeat)
    _, on = await consult(persona(patience=4), script=repeat)
    assert len(off) == 8 and not any(r.end for r in off)
    assert on[-1].end and on[-1].disclosure.end_request and len(on) < 8
    assert on[1].revealed == [] and off[1].revealed == ["itch"]  # a repeat gets less


async def test_real_choleric_leaves_a_repeating_doctor_and_a_slow_one_learns_less():
    _, replies = await consult(PERSONAS["choleric"], script=["Does it itch?"] * 14)
    assert replies[-1].end and len(replies) <= 4
    _, neutral = await consult(PERSONAS["neutral"], script=["Does it itch?"] * 14)
    assert len(neutral) == 14 and not neutral[-1].end


async def test_real_phlegmatic_tells_nothing_a_question_did_not_ask_about():
    for case in load_cases("bundled", split="test")[:12]:
        _, replies = await consult(PERSONAS["phlegmatic"], case=case)
        for r in replies:
            assert not r.disclosure.volunteered
            assert set(r.revealed) <= set(r.disclosure.direct)


async def test_real_sanguine_volunteers_and_real_melancholic_worries():
    cases = load_cases("bundled", split="test")[:8]
    volunteered = distractors = 0
    for case in cases:
        _, s = await consult(PERSONAS["sanguine"], case=case)
        volunteered += sum(len(r.disclosure.volunteered) for r in s)
        patient, m = await consult(PERSONAS["melancholic"], case=case)
        for r in m:
            distractors += len(r.disclosure.distractors)
            assert set(r.revealed) <= {f.id for f in case.facts}
            for worry in r.disclosure.distractors:
                assert worry not in {f.text for f in case.facts}
    assert volunteered > 0 and distractors > 0


@pytest.mark.slow
async def test_nothing_the_patient_says_names_a_diagnosis_over_all_cases_temperaments_seeds():
    """Templates, transformations, distractors and digressions, over every bundled case x
    temperament x 3 seeds, never name the case's label or a synonym, nor any label the case's
    own text does not already mention (a history of chickenpox in a shingles case is a fact)."""
    for case in load_cases("bundled-all"):
        own = label_table.normalize_label(case.diagnosis) or case.diagnosis
        allowed = {lab for text in [case.chief_complaint, *(f.text for f in case.facts)]
                   for lab in label_table.find_labels(text)} - {own}
        for mode in ("minimise", "amplify"):
            for fact in case.facts:
                said = set(label_table.find_labels(bend_severity(fact.text, mode)))
                assert said <= set(label_table.find_labels(fact.text)) - {own}, (case.id, fact.id, said)
        for t in TEMPERAMENTS:
            for seed in range(3):
                patient = RulePatient()
                opening = patient.reset(case, PERSONAS[t], seed)
                assert set(label_table.find_labels(opening.text)) <= allowed, (case.id, t, seed)
                for q in SCRIPT:
                    r = await patient.step(q)
                    assert set(label_table.find_labels(r.text)) <= allowed, (case.id, t, seed, r.text)
                    for worry in r.disclosure.distractors:
                        assert own.lower() not in worry.lower()
                    if r.end:
                        break


# ------------------------------------------------------------------ the LLM patient, scripted
def _reply(text="Okay.", ids=(), end=False):
    return {"reply": text, "revealed_fact_ids": list(ids), "end_consultation": end}


async def test_llm_patient_gets_only_the_released_facts_and_the_behaviour():
    from dxgraph.models.scripted import ScriptedModel
    from dxgraph.simulator.patient_llm import LLMPatient

    model = ScriptedModel([_reply("It itches.", ["itch", "meds"])])
    p = LLMPatient(model)
    p.reset(CASE, persona(direct_only=True), seed=0)
    r = await p.step("Does the rash itch?")
    system_text, turn_text = model.calls[0][0].text, model.calls[0][-1].text
    assert "answer only what" not in system_text.lower()
    assert "only when asked about that exact thing" in system_text
    assert "[itch]" in turn_text and "[meds]" not in turn_text and "silvery" not in turn_text
    assert r.revealed == ["itch"]  # an id the policy did not release is dropped
    assert r.disclosure.asked == ["itch"] and r.disclosure.words == 2


@pytest.mark.parametrize("knob, expect", [
    ({"volunteer": 1.0}, "Also bring up, unasked"),
    ({"worry": 1.0}, "Voice this fear"),
    ({"severity": "amplify", "severity_rate": 1.0}, "worse and worse"),
    ({"patience": 1}, "ask to end the consultation"),
])
async def test_llm_patient_turn_note_follows_each_knob(knob, expect):
    from dxgraph.models.scripted import ScriptedModel
    from dxgraph.simulator.patient_llm import LLMPatient

    notes = {}
    for on in (False, True):
        model = ScriptedModel([_reply("Yes.", ["itch"])])
        p = LLMPatient(model, worries=["My joints ache every morning."])
        p.reset(CASE, persona(**knob) if on else persona(), seed=0)
        r = await p.step("Does the rash itch?")
        notes[on] = (model.calls[0][-1].text, r)
    assert expect not in notes[False][0] and expect in notes[True][0]
    if "patience" in knob:
        assert notes[True][1].end and not notes[False][1].end  # the policy's end request holds


async def test_llm_patient_reply_naming_the_label_is_recorded_as_a_leak():
    from dxgraph.models.scripted import ScriptedModel
    from dxgraph.simulator.patient_llm import LLMPatient

    model = ScriptedModel([_reply("I think it is psoriasis.", ["itch"]), _reply("It itches.", ["itch"])])
    p = LLMPatient(model)
    p.reset(CASE, persona(), seed=0)
    assert (await p.step("Does the rash itch?")).disclosure.label_leaks == ["psoriasis"]
    assert (await p.step("Does it itch at night?")).disclosure.label_leaks == []
