"""The LLM doctor: strategies, no ground truth in any prompt, bounded repair, tools."""

from __future__ import annotations

import pytest

from dxgraph.agents.doctor import STRATEGIES, CaseView, DoctorAction, LLMDoctor, ToolBox
from dxgraph.errors import ConfigError, ModelError, ModelNotConfigured, ModelUnavailable
from dxgraph.models.scripted import ScriptedModel
from dxgraph.types import Case, Diagnosis, Fact, ImageRef, IndicatorResult, Turn

CASE = Case(
    id="d1",
    age=51,
    sex="male",
    chief_complaint="Scaly patches on my elbows.",
    facts=[Fact(id="f1", category="history", text="My father has the same problem.")],
    visual_findings="Well-demarcated red plaques with silvery scale.",
    images=[ImageRef(path="/nonexistent/photo.png")],
    diagnosis="psoriasis",
    differential=["eczema", "seborrheic dermatitis"],
    split="test",
    workflow="glaucoma",
)
HIDDEN = ("psoriasis", "seborrheic dermatitis")
TRANSCRIPT = [Turn(index=0, role="patient", text=CASE.chief_complaint)]


def _assert_no_truth(model: ScriptedModel) -> None:
    assert model.calls
    for messages in model.calls:
        for m in messages:
            low = m.text.lower()
            # The answer list names every label once; the truth must not appear anywhere else.
            if m.role == "system":
                low = low.split("answer list:")[0]
            for hidden in HIDDEN:
                assert hidden not in low, (m.role, m.text)


def test_case_view_hides_truth_and_gates_the_photo():
    text = CaseView.from_case(CASE, "dialogue").model_dump_json()
    assert "psoriasis" not in text and "silvery" not in text and "photo.png" not in text
    assert "silvery" in CaseView.from_case(CASE, "dialogue+image").visual_findings
    assert CaseView.from_case(CASE, "dialogue+image").workflow is None
    assert CaseView.from_case(CASE, "dialogue+image+tools").workflow == "glaucoma"
    with pytest.raises(ConfigError):
        CaseView.from_case(CASE, "telepathy")


def test_action_is_question_xor_final():
    with pytest.raises(ValueError):
        DoctorAction()
    with pytest.raises(ValueError):
        DoctorAction(question="Why?", final={"label": "eczema"})


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_no_ground_truth_reaches_the_model(strategy):
    async def fake_workflow(workflow, paths):
        return Diagnosis(workflow=workflow, outcome="negative", indicators=[
            IndicatorResult(id="vcdr", kind="quantitative", value=0.4, status="ok", passed=False)])

    model = ScriptedModel(lambda msgs: {"final": {"label": "eczema", "confidence": 0.6,
                                                  "differential": ["eczema"], "basis": "flexural"}}
                          if strategy == "single" else {"question": "Does it itch?"})
    doctor = LLMDoctor(model, strategy=strategy, tools=ToolBox(workflow_runner=fake_workflow))
    out = await doctor.act(CaseView.from_case(CASE, strategy), TRANSCRIPT)
    _assert_no_truth(model)
    if strategy == "single":
        assert out.action.final.label == "eczema"
    else:
        assert out.action.question == "Does it itch?"
    if strategy == "dialogue+image+tools":
        assert out.tool_turns and "vcdr = 0.4" in out.tool_turns[0].text
        assert any("vcdr" in m.text for m in model.calls[0])
    else:
        assert not out.tool_turns


async def test_unknown_label_is_repaired_then_canonical():
    model = ScriptedModel([
        {"final": {"label": "dragon scale disease", "confidence": 0.5}},
        {"final": {"label": "Eczema", "confidence": 0.7, "differential": ["psoriasis"]}},
    ])
    out = await LLMDoctor(model).act(CaseView.from_case(CASE), TRANSCRIPT)
    assert out.action.final.label == "eczema" and len(model.calls) == 2
    assert "not in the answer list" in model.calls[1][-1].text


async def test_question_when_final_is_required_ends_as_abstention_after_repairs():
    model = ScriptedModel(lambda msgs: {"question": "And?"})
    out = await LLMDoctor(model, max_repairs=2).act(CaseView.from_case(CASE), TRANSCRIPT, must_finalize=True)
    assert out.action.final.label is None and len(model.calls) == 3


async def test_malformed_json_every_time_is_a_model_error_not_an_abstention():
    model = ScriptedModel(lambda msgs: "not json at all")
    with pytest.raises(ModelError):
        await LLMDoctor(model, max_repairs=1).act(CaseView.from_case(CASE), TRANSCRIPT)
    assert len(model.calls) == 2


@pytest.mark.parametrize("error", [ModelUnavailable("endpoint gave no answer"), ModelNotConfigured("not an http URL")])
async def test_unreachable_or_misconfigured_model_propagates_without_repair(error):
    # a repair prompt cannot fix a dead endpoint: the error must reach the runner as itself,
    # after one call, even though the next scripted reply would have been a valid question
    model = ScriptedModel([error, {"question": "How long have you had them?"}])
    with pytest.raises(type(error)):
        await LLMDoctor(model, max_repairs=2).act(CaseView.from_case(CASE), TRANSCRIPT)
    assert len(model.calls) == 1


async def test_tools_without_vlm_or_workflow_say_unavailable():
    case = CASE.model_copy(update={"workflow": None})
    turns = await ToolBox().evidence(CaseView.from_case(case, "dialogue+image+tools"))
    assert turns[0].tool == "vlm" and turns[0].text.startswith("unavailable")


async def test_vision_doctor_gets_the_image(tmp_path):
    png = tmp_path / "p.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    case = CASE.model_copy(update={"images": [ImageRef(path=str(png))]})
    model = ScriptedModel([{"question": "Does it itch?"}])
    await LLMDoctor(model, strategy="dialogue+image", vision=True).act(
        CaseView.from_case(case, "dialogue+image"), TRANSCRIPT)
    assert model.calls[0][1].images and model.calls[0][1].images[0].data.startswith(b"\x89PNG")
    assert "silvery" not in model.calls[0][1].text  # the photo itself, not its description


def test_wire_schema_is_a_question_or_a_final_answer_from_the_list():
    from dxgraph.agents.doctor import FinalAction
    from dxgraph.testing.stub_server import example_for_schema
    from dxgraph.simulator.labels import IMAGING_LABELS, LABELS

    schema = DoctorAction.model_json_schema()
    ask, final = schema["anyOf"]
    assert ask["required"] == ["question"] and final["required"] == ["final"]
    assert ask["additionalProperties"] is False and final["additionalProperties"] is False
    label = final["properties"]["final"]["properties"]["label"]
    # imaging outcomes are answers too (issue 14.4)
    assert label["anyOf"][0]["enum"] == sorted(LABELS) + sorted(IMAGING_LABELS) + ["other"]
    assert label["anyOf"][1] == {"type": "null"}
    # A server decoding to the schema produces valid actions; at the end only a final one.
    assert DoctorAction.model_validate(example_for_schema(schema)).question
    forced = FinalAction.model_json_schema()
    assert forced["required"] == ["final"] and "question" not in forced["properties"]
    assert FinalAction.model_validate(example_for_schema(forced)).final.label in LABELS


async def test_final_answer_is_asked_with_the_final_only_schema_and_differential_is_capped():
    from dxgraph.agents.doctor import FinalAction

    def reply(msgs):
        return {"final": {"label": "Psoriasis", "confidence": 0.7, "basis": "plaques",
                          "differential": ["psoriasis", "eczema", "eczema", "acne", "hives", "warts"]}}

    model = ScriptedModel(reply)
    out = await LLMDoctor(model).act(CaseView.from_case(CASE), TRANSCRIPT, must_finalize=True)
    assert model.schemas == [FinalAction]
    assert out.action.final.label == "psoriasis" and out.action.final.differential == ["eczema", "acne", "hives"]
