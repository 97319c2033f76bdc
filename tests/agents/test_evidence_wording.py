"""A workflow's evidence score is called what it is, never a confidence percentage."""

from __future__ import annotations

from dxgraph.agents.assessor import assess, describe_score
from dxgraph.agents.planner import compile_plan
from dxgraph.agents.prompts import render_final
from dxgraph.agents.toolbox import _summarise_workflow
from dxgraph.types import FinalDiagnosis, IndicatorResult
from dxgraph.workflows.loader import find_workflow


def _glaucoma_both_signs():
    plan = compile_plan(find_workflow("glaucoma")[0])
    items = {i.indicator: i for i in plan.items}
    res = [IndicatorResult(id=i, kind="quantitative", value=v, unit="ratio", rule=items[i].rule, status="ok",
                           passed=True, weight=items[i].weight, group=items[i].group)
           for i, v in (("vcdr", 0.75), ("rim_to_disc", 0.15))]
    res += [IndicatorResult(id=i, kind="qualitative", status="unavailable", error="no VLM configured",
                            rule='answer == "yes"', weight=1.0) for i in ("disc_haemorrhage", "peripapillary_atrophy")]
    return assess(plan, res)


def test_the_score_reads_as_an_evidence_score_with_its_coverage():
    dx = _glaucoma_both_signs()
    assert dx.score == 1.0 and dx.probability is None
    text = describe_score(dx)
    assert "evidence score 1.00, threshold 0.5" in text
    assert "sign present in 2/2 indicators read (4 in the workflow)" in text
    assert f"coverage {dx.coverage:.0%} of the weight" in text
    assert "probability" not in text and "confidence" not in text


async def test_the_rule_doctor_never_says_confidence_100_for_an_evidence_score():
    from dxgraph.agents.baselines import KnowledgeBase, RuleDoctor
    from dxgraph.agents.doctor import CaseView, ToolBox
    from dxgraph.simulator.cases import load_cases
    from dxgraph.types import ImageRef

    dx = _glaucoma_both_signs()

    async def runner(workflow, paths):
        return dx

    doctor = RuleDoctor(KnowledgeBase.build(load_cases(split="train")), tools=ToolBox(workflow_runner=runner))
    view = CaseView(case_id="x", chief_complaint="my eye", strategy="dialogue+image+tools",
                    images=[ImageRef(path="/tmp/eye.png")], workflow="glaucoma")
    turn = await doctor.act(view, [])
    said = turn.text
    assert said.startswith("My conclusion: glaucoma suspect (workflow evidence score 1.00, threshold 0.5; "
                           "sign present in 2/2 indicators read")
    assert "confidence" not in said.split(" Basis:")[0] and "100%" not in said
    assert turn.action.final.evidence and _summarise_workflow(dx) in said


def test_a_doctor_probability_still_reads_as_confidence():
    text = render_final(FinalDiagnosis(label="eczema", confidence=0.72))
    assert text.startswith("My conclusion: eczema (confidence 72%).")
