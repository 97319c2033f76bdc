"""Imaging diagnoses reach the dialogue: the rule doctor concludes from a workflow's outcome
with the whole evidence as its basis, and imaging labels are in the answer list."""

from __future__ import annotations

import pytest

from dxgraph.agents.doctor import DoctorAction, ToolBox, workflow_label
from dxgraph.agents.toolbox import _summarise_workflow
from dxgraph.agents.assessor import assess
from dxgraph.agents.planner import compile_plan
from dxgraph.types import IndicatorResult
from dxgraph.workflows.loader import find_workflow


def _dx(vcdr: float, rdr: float):
    plan = compile_plan(find_workflow("glaucoma")[0])
    items = {i.indicator: i for i in plan.items}
    res = []
    for ind_id, v, ok in (("vcdr", vcdr, vcdr >= 0.6), ("rim_to_disc", rdr, rdr < 0.2)):
        it = items[ind_id]
        res.append(IndicatorResult(id=ind_id, kind="quantitative", value=v, unit="ratio", rule=it.rule, status="ok",
                                   passed=ok, weight=it.weight, group=it.group))
    for ind_id in ("disc_haemorrhage", "peripapillary_atrophy"):
        res.append(IndicatorResult(id=ind_id, kind="qualitative", status="unavailable", error="no VLM configured",
                                   rule='answer == "yes"', weight=1.0))
    return assess(plan, res)


def test_the_workflow_outcome_names_an_imaging_label():
    assert workflow_label(_summarise_workflow(_dx(0.75, 0.25))) == "glaucoma suspect"
    assert workflow_label(_summarise_workflow(_dx(0.40, 0.30))) == "no glaucoma"
    # the numbers read as the evidence table prints them, not as 0.776596 beside a table's 0.777
    assert "vcdr = 0.777 ratio (sign present" in _summarise_workflow(_dx(0.776596, 0.25))
    assert workflow_label("workflow 'glaucoma': outcome indeterminate: too little evidence available") is None


def test_imaging_labels_are_in_the_wire_schema():
    schema = DoctorAction.model_json_schema()
    text = str(schema)
    assert "glaucoma suspect" in text and "cardiomegaly" in text


async def test_the_rule_doctor_concludes_from_the_workflow_with_the_whole_basis():
    from dxgraph.agents.baselines import KnowledgeBase, RuleDoctor
    from dxgraph.agents.doctor import CaseView
    from dxgraph.simulator.cases import load_cases
    from dxgraph.types import ImageRef

    dx = _dx(0.75, 0.25)

    async def runner(workflow, paths):
        return dx

    doctor = RuleDoctor(KnowledgeBase.build(load_cases(split="train")), tools=ToolBox(workflow_runner=runner))
    view = CaseView(case_id="x", chief_complaint="my eye", strategy="dialogue+image+tools",
                    images=[ImageRef(path="/tmp/eye.png")], workflow="glaucoma")
    turn = await doctor.act(view, [])
    final = turn.action.final
    assert final is not None and final.label == "glaucoma suspect"
    assert final.confidence == pytest.approx(dx.score, abs=0.01)  # the summary quotes it to 2 places
    # the whole evidence, not cut mid-string
    assert final.basis.endswith(turn.tool_turns[0].text) and "vcdr = 0.750 ratio (sign present" in final.basis
