"""The glaucoma decision with and without a VLM, under the built-in's own YAML: groups share one
weight, "uncertain" counts half, and too little evidence is indeterminate, never a negative."""

from __future__ import annotations

import pytest

from dxgraph.agents.assessor import assess, evidence_table
from dxgraph.agents.planner import compile_plan
from dxgraph.types import IndicatorResult
from dxgraph.workflows.loader import find_workflow, parse_workflow

POS = "glaucoma suspect (refer for full glaucoma assessment)"
NEG = "no glaucomatous optic disc signs detected"


@pytest.fixture(scope="module")
def plan():
    return compile_plan(find_workflow("glaucoma")[0])


def _results(plan, vcdr=None, rdr=None, haem=None, ppa=None):
    """Indicator results as the tool agent makes them (weights, group and policy from the plan)."""
    items = {i.indicator: i for i in plan.items}
    out = []
    for ind_id, value, var in (("vcdr", vcdr, "vcdr"), ("rim_to_disc", rdr, "rdr"),
                               ("disc_haemorrhage", haem, "answer"), ("peripapillary_atrophy", ppa, "answer")):
        it = items[ind_id]
        base = dict(id=ind_id, kind=it.kind, rule=it.rule, weight=it.weight, group=it.group,
                    uncertain=it.uncertain, abnormal=it.abnormal)
        if value is None:
            out.append(IndicatorResult(**base, status="unavailable", error="no VLM configured"))
        else:
            from dxgraph.workflows.rules import compile_rule
            out.append(IndicatorResult(**base, status="ok", value=value, values={var: value},
                                       passed=compile_rule(it.rule).evaluate({var: value})))
    return out


def test_without_a_vlm_the_cup_decides_and_a_thin_rim_alone_does_not(plan):
    dx = assess(plan, _results(plan, vcdr=0.75, rdr=0.25))
    # the segmentation group counts once (weight 2), vCDR share 2 of 3 within it
    assert dx.outcome == POS and dx.score == pytest.approx(2 / 3) and dx.coverage == 0.5
    # the real CC0 photograph: vCDR 0.403, rim-to-disc 0.186 (temporal rim, thinnest by ISNT)
    real = assess(plan, _results(plan, vcdr=0.403, rdr=0.186))
    assert real.outcome == NEG and "sign present but below the decision threshold: rim_to_disc" in real.note


def test_a_vlm_saying_no_twice_does_not_flip_a_fully_abnormal_disc(plan):
    without = assess(plan, _results(plan, vcdr=0.75, rdr=0.15))
    with_vlm = assess(plan, _results(plan, vcdr=0.75, rdr=0.15, haem="no", ppa="no"))
    assert without.outcome == with_vlm.outcome == POS
    assert (without.score, with_vlm.score) == (1.0, 0.5) and with_vlm.coverage == 1.0


def test_a_large_cup_with_a_normal_rim_needs_support_once_a_vlm_answers(plan):
    # documented in glaucoma.yaml: (2 * 2/3) / 4 with two VLM "no"s
    assert assess(plan, _results(plan, vcdr=0.75, rdr=0.25, haem="no", ppa="no")).outcome == NEG
    assert assess(plan, _results(plan, vcdr=0.75, rdr=0.25, haem="yes", ppa="no")).outcome == POS


def test_uncertain_counts_half_not_no(plan):
    dx = assess(plan, _results(plan, vcdr=0.75, rdr=0.25, haem="uncertain", ppa="uncertain"))
    # "uncertain" as "no" would give 1.33 / 4, negative; as half-signs (1.33 + 0.5 + 0.5) / 4
    assert dx.score == pytest.approx(7 / 12) and dx.outcome == POS
    assert [r.finding for r in dx.indicators][2:] == ["uncertain", "uncertain"]


def test_too_little_evidence_is_indeterminate_with_the_reason(plan):
    dx = assess(plan, _results(plan, haem="no"))  # the segmentation failed, one VLM answer
    assert dx.outcome.startswith("indeterminate") and dx.outcome != NEG
    assert "coverage 25%" in dx.note and "minimum 50%" in dx.note


def test_findings_read_sign_present_or_absent_never_pass(plan):
    dx = assess(plan, _results(plan, vcdr=0.45, rdr=0.186))
    assert [r.finding for r in dx.indicators] == ["sign absent", "sign present", "unavailable", "unavailable"]
    table = evidence_table(dx)
    assert "sign present" in table and "pass" not in table and "fail" not in table
    assert dx.model_dump()["indicators"][1]["finding"] == "sign present"
    # the JSON round-trips although finding is derived
    assert type(dx).model_validate(dx.model_dump()).indicators[1].finding == "sign present"


def test_a_group_needs_its_one_weight_in_the_decision():
    from dxgraph.errors import DxGraphError
    text = (find_workflow("glaucoma")[0].model_dump_json())
    import json

    import yaml
    data = json.loads(text)
    data["decision"]["groups"] = {}
    with pytest.raises(DxGraphError, match="group 'disc_cup_segmentation' has no weight"):
        parse_workflow(yaml.safe_dump(data))
