"""The LLM doctor's prompt carries the workflow's evidence table and the imaging labels."""

from __future__ import annotations

from dxgraph.agents.assessor import assess
from dxgraph.agents.doctor import CaseView, LLMDoctor, ToolBox
from dxgraph.agents.planner import compile_plan
from dxgraph.models.scripted import ScriptedModel
from dxgraph.types import ImageRef, IndicatorResult
from dxgraph.workflows.loader import find_workflow


def _dx():
    plan = compile_plan(find_workflow("glaucoma")[0])
    items = {i.indicator: i for i in plan.items}
    res = [IndicatorResult(id="vcdr", kind="quantitative", value=0.75, unit="ratio", rule=items["vcdr"].rule,
                           status="ok", passed=True, weight=items["vcdr"].weight, group=items["vcdr"].group),
           IndicatorResult(id="rim_to_disc", kind="quantitative", value=0.15, unit="ratio",
                           rule=items["rim_to_disc"].rule, status="ok", passed=True,
                           weight=items["rim_to_disc"].weight, group=items["rim_to_disc"].group),
           IndicatorResult(id="disc_haemorrhage", kind="qualitative", status="unavailable", error="no VLM configured",
                           rule='answer == "yes"', weight=1.0),
           IndicatorResult(id="peripapillary_atrophy", kind="qualitative", status="ok", value="no",
                           rule='answer == "yes"', passed=False, weight=1.0)]
    return assess(plan, res)


def _view(workflow: str | None) -> CaseView:
    return CaseView(case_id="x", chief_complaint="My sight seems dimmer at the edges.",
                    strategy="dialogue+image+tools", images=[ImageRef(path="/tmp/eye.png")], workflow=workflow)


async def test_the_prompt_holds_every_indicator_with_value_unit_and_finding_and_the_imaging_labels():
    async def runner(workflow, paths):
        return _dx()

    model = ScriptedModel([{"question": "Any eye pain?"}])
    doctor = LLMDoctor(model, strategy="dialogue+image+tools", tools=ToolBox(workflow_runner=runner))
    turn = await doctor.act(_view("glaucoma"), [])
    assert turn.action.question == "Any eye pain?"
    system_text = model.calls[0][0].text
    evidence = [m.text for m in model.calls[0] if m.text.startswith("[tool evidence from workflow:glaucoma]")]
    assert len(evidence) == 1
    text = evidence[0]
    assert "outcome glaucoma suspect" in text and "evidence score" in text and "coverage" in text
    assert "vcdr = 0.750 ratio (sign present; abnormal if vcdr >= 0.6)" in text
    assert "rim_to_disc = 0.150 ratio (sign present; abnormal if" in text
    assert "peripapillary_atrophy = no (sign absent;" in text
    assert "disc_haemorrhage: unavailable (no VLM configured)" in text
    # the imaging outcomes are answers the doctor may give once a workflow ran
    answers = system_text.split("nswer list:")[1]
    assert "glaucoma suspect" in answers and "no glaucoma" in answers


async def test_without_a_workflow_the_imaging_labels_are_not_offered():
    model = ScriptedModel([{"question": "Any eye pain?"}])
    await LLMDoctor(model, strategy="dialogue+image+tools").act(_view(None), [])
    answers = model.calls[0][0].text.split("nswer list:")[1]
    assert "glaucoma suspect" not in answers
    assert not any("[tool evidence from workflow:" in m.text for m in model.calls[0])
