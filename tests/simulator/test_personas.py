"""Temperaments: the five 3MDBench axes, the rule patient's voice, user persona files."""

from __future__ import annotations

import random

import pytest

from dxgraph.errors import ConfigError
from dxgraph.simulator import labels as lt
from dxgraph.simulator.patient import PersonaStyle, persona_prompt
from dxgraph.simulator.personas import AXES, TEMPERAMENTS, Persona, load_persona_file, load_personas

PERSONAS = load_personas()


def test_five_temperaments_in_order_each_on_the_five_axes():
    assert TEMPERAMENTS == ("sanguine", "choleric", "melancholic", "phlegmatic", "neutral")
    assert tuple(PERSONAS) == TEMPERAMENTS
    for name, p in PERSONAS.items():
        assert p.name == name
        assert list(p.axes()) == list(AXES)
        assert all(len(v) > 20 for v in p.axes().values()), name
    # Temperaments differ on every axis.
    for axis in AXES:
        assert len({getattr(p, axis) for p in PERSONAS.values()}) == len(PERSONAS), axis


def test_behaviour_knobs_order_the_temperaments():
    b = {n: p.behaviour for n, p in PERSONAS.items()}
    assert b["sanguine"].verbosity > b["phlegmatic"].verbosity
    assert b["sanguine"].digression > b["phlegmatic"].digression
    assert b["melancholic"].ask_back > b["phlegmatic"].ask_back
    assert b["neutral"].ask_back == b["neutral"].digression == 0.0


def test_no_template_names_a_diagnosis():
    for p in PERSONAS.values():
        for kind in ("opening", "answer", "unknown", "farewell", "question_back", "digression"):
            for text in getattr(p.templates, kind):
                assert lt.find_labels(text) == [], (p.name, text)


def test_voice_is_deterministic_given_a_seed_and_differs_by_seed():
    p = PERSONAS["sanguine"]

    def talk(seed):
        rng = random.Random(seed)
        return [p.opening("My arm itches.", rng)] + [p.answer("It started a week ago.", rng) for _ in range(6)]

    assert talk(1) == talk(1)
    assert talk(1) != talk(2)
    assert all("My arm itches." in talk(s)[0] for s in range(5))
    assert all("It started a week ago." in line for line in talk(3)[1:])


def test_knobs_take_effect():
    neutral, sanguine = PERSONAS["neutral"], PERSONAS["sanguine"]
    rng = random.Random(0)
    assert {neutral.answer("Fact.", rng) for _ in range(50)} == {"Fact."}
    extras = [sanguine.answer("Fact.", rng) for _ in range(400)]
    asides = sum(any(d in e for d in sanguine.templates.digression) for e in extras) / len(extras)
    questions = sum(any(q in e for q in sanguine.templates.question_back) for e in extras) / len(extras)
    assert abs(asides - sanguine.behaviour.digression) < 0.08
    assert abs(questions - sanguine.behaviour.ask_back) < 0.08


def test_the_patient_module_reads_the_voice_and_the_axes():
    style = PersonaStyle(PERSONAS["choleric"])
    assert style.openings == PERSONAS["choleric"].templates.opening
    assert style.unknowns == PERSONAS["choleric"].templates.unknown
    prompt = persona_prompt(PERSONAS["melancholic"])
    assert "melancholic" in prompt and PERSONAS["melancholic"].attitude_to_treatment in prompt


USER = """
personas:
  stoic:
    symptom_description: Understates everything.
    asking_questions: Never asks.
    communication_style: Few words.
    attitude_to_treatment: Accepts anything.
    emotional_involvement: None shown.
    templates: {opening: ["{complaint}"], answer: ["{answer}"]}
    behaviour: {verbosity: 1}
  neutral:
    symptom_description: Plain.
    asking_questions: Sometimes.
    communication_style: Polite.
    attitude_to_treatment: Willing.
    emotional_involvement: Moderate.
"""


def test_user_personas_from_a_path_and_from_dxgraph_home(tmp_path, monkeypatch):
    f = tmp_path / "mine.yaml"
    f.write_text(USER)
    got = load_personas(f)
    assert list(got)[:5] == list(TEMPERAMENTS) and "stoic" in got
    assert got["neutral"].communication_style == "Polite."  # a user file may retune a shipped persona
    assert got["stoic"].templates.unknown == ["I don't know."]  # defaults fill what is left out
    home = tmp_path / "home"
    (home / "personas").mkdir(parents=True)
    (home / "personas" / "x.yaml").write_text(USER)
    monkeypatch.setenv("DXGRAPH_HOME", str(home))
    assert "stoic" in load_personas()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("    asking_questions: Never asks.\n", ""), "persona 'stoic': field 'asking_questions': Field required"),
    (lambda t: t.replace('answer: ["{answer}"]', 'answer: ["{reply}"]'), "uses {reply}"),
    (lambda t: t.replace('answer: ["{answer}"]', 'answer: ["Okay."]'), "must contain {answer}"),
    (lambda t: t.replace('answer: ["{answer}"]', 'answer: ["{answer} Is it acne?"]'), "names a diagnosis ('acne')"),
    (lambda t: t.replace("verbosity: 1", "verbosity: 9"), "behaviour.verbosity"),
    (lambda t: t.replace("verbosity: 1", "chattiness: 1"), "behaviour.chattiness"),
    (lambda t: t.replace("personas:", "personas: ["), "not valid YAML"),
])
def test_bad_persona_files_name_file_persona_and_field(tmp_path, edit, message):
    f = tmp_path / "bad.yaml"
    f.write_text(edit(USER))
    with pytest.raises(ConfigError) as exc:
        load_persona_file(f)
    assert message in str(exc.value) and "bad.yaml" in str(exc.value)


def test_missing_persona_path_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="neither a YAML file nor a folder"):
        load_personas(tmp_path / "nope.yaml")


def test_persona_model_forbids_unknown_fields():
    with pytest.raises(ValueError):
        Persona(name="x", symptom_description="a", asking_questions="b", communication_style="c",
                attitude_to_treatment="d", emotional_involvement="e", mood="f")
