import textwrap

import pytest

import tests.workflows.toytools as toy
from dxgraph.agents.planner import compile_plan
from dxgraph.telemetry import setup_tracing
from dxgraph.tools.cache import ToolCache
from dxgraph.tools.runner import ToolRunner
from dxgraph.workflows.loader import parse_workflow
from dxgraph.agents.diagnose import run_workflow

WF = toy.TOY_HEAD + (
    "  - id: frac\n    description: share of high pixels\n    kind: quantitative\n" + toy.FRAC_STEPS
    + "    unit: ratio\n    rule: frac >= 0.5\n    weight: 2\n"
    "  - id: frac_strict\n    description: same split, stricter rule\n    kind: quantitative\n" + toy.FRAC_STEPS
    + "    rule: frac >= 0.9\n    weight: 1\n"
) + textwrap.dedent(
    """\
      - id: broken
        description: a segmenter that finds nothing
        kind: quantitative
        steps:
          - {tool: toy_load, inputs: {path: image}, outputs: img}
          - {tool: toy_fail, inputs: {image: img}, outputs: v}
        rule: v > 1
        weight: 5
      - id: opinion
        description: a qualitative answer
        kind: qualitative
        steps:
          - {tool: toy_load, inputs: {path: image}, outputs: img}
          - {tool: toy_answer, inputs: {image: img}, args: {say: "no"}, outputs: answer}
        rule: answer == "yes"
        weight: 1
    decision: {method: weighted, threshold: 0.5}
    """
)


@pytest.fixture()
def image(tmp_path):
    p = tmp_path / "img.txt"
    p.write_text("0.1 0.7 0.8 0.9\n")
    return p


@pytest.fixture()
def runner(tmp_path):
    return ToolRunner(ToolCache(tmp_path / "cache"), strict=True)


async def test_graph_fans_out_and_renormalises_over_available(image, runner):
    toy.CALLS.clear()
    wf = parse_workflow(WF)
    dx = await run_workflow(wf, [str(image)], runner=runner)
    by_id = {i.id: i for i in dx.indicators}
    assert [i.id for i in dx.indicators] == ["frac", "frac_strict", "broken", "opinion"]
    assert by_id["frac"].value == pytest.approx(0.75) and by_id["frac"].passed is True
    assert by_id["frac_strict"].passed is False
    assert by_id["broken"].status == "unavailable" and "segmenter found nothing" in by_id["broken"].error
    assert by_id["opinion"].value == "no" and by_id["opinion"].passed is False
    # weights over the available ones: frac 2 passed of 2 + 1 + 1 = 0.5 -> positive at threshold 0.5
    assert dx.score == pytest.approx(0.5) and dx.outcome == "high"
    assert "renormalised over 3 of 4" in dx.note and "broken" in dx.note
    # identical steps in parallel branches ran once
    assert toy.CALLS["toy_load"] == 1 and toy.CALLS["toy_split"] == 1 and toy.CALLS["toy_fraction"] == 1
    calls = [c.tool for c in by_id["frac"].calls]
    assert calls == ["toy_load", "toy_split", "toy_fraction"]
    assert by_id["frac"].values["frac"] == pytest.approx(0.75)


async def test_second_run_is_served_from_cache(image, runner, tmp_path):
    wf = parse_workflow(WF)
    await run_workflow(wf, [str(image)], runner=runner)
    toy.CALLS.clear()
    fresh = ToolRunner(ToolCache(tmp_path / "cache"), strict=True)  # same disk cache, new process memory
    dx = await run_workflow(wf, [str(image)], runner=fresh)
    assert toy.CALLS == {}
    assert all(c.cached for c in dx.indicators[0].calls)
    assert dx.indicators[0].value == pytest.approx(0.75)
    # a changed image is a different key
    image.write_text("0.1 0.2 0.3 0.9\n")
    dx2 = await run_workflow(wf, [str(image)], runner=fresh)
    assert dx2.indicators[0].value == pytest.approx(0.25) and dx2.outcome == "low"


async def test_every_indicator_unavailable_is_indeterminate(tmp_path, runner):
    wf = parse_workflow(WF)
    bad = tmp_path / "garbled.txt"  # present but unreadable by the toy tool (a missing file is refused earlier)
    bad.write_text("not a number\n")
    dx = await run_workflow(wf, [str(bad)], runner=ToolRunner(ToolCache(None)))
    assert all(i.status == "unavailable" for i in dx.indicators)
    assert dx.outcome.startswith("indeterminate") and dx.score is None


async def test_nodes_and_tools_are_traced(image, runner):
    memory = setup_tracing("memory")
    try:
        dx = await run_workflow(parse_workflow(WF), [str(image)], runner=runner)
        names = [s.name for s in memory.get_finished_spans()]
        assert "workflow toy" in names and "node plan" in names and "node assess" in names
        assert names.count("node indicator frac") == 1 and "tool toy_split" in names
        assert dx.trace_id and len(dx.trace_id) == 32
    finally:
        setup_tracing("none")


def test_plan_is_plain_data_in_dependency_order():
    plan = compile_plan(parse_workflow(WF))
    assert [s.tool for s in plan.items[0].steps] == ["toy_load", "toy_split", "toy_fraction"]
    assert plan.model_dump(mode="json")["items"][0]["steps"][1]["outputs"] == {"low": "low", "high": "high"}


async def test_out_of_order_steps_are_sorted(image, runner):
    text = WF.replace(
        "      - {tool: toy_load, inputs: {path: image}, outputs: img}\n      - {tool: toy_split, inputs: {image: img}, outputs: [low, high]}\n      - {tool: toy_fraction, inputs: {low: low, high: high}, outputs: frac}\n    unit: ratio",
        "      - {tool: toy_fraction, inputs: {low: low, high: high}, outputs: frac}\n      - {tool: toy_split, inputs: {image: img}, outputs: [low, high]}\n      - {tool: toy_load, inputs: {path: image}, outputs: img}\n    value: frac\n    unit: ratio",
    )
    wf = parse_workflow(text)
    assert wf.indicators[0].steps[0].tool == "toy_fraction"
    dx = await run_workflow(wf, [str(image)], runner=runner)
    assert dx.indicators[0].value == pytest.approx(0.75)


async def test_each_indicator_is_reported_as_it_finishes(image, runner):
    seen = []
    dx = await run_workflow(parse_workflow(WF), [str(image)], runner=runner, on_indicator=seen.append)
    assert sorted(r.id for r in seen) == sorted(i.id for i in dx.indicators)
    assert {r.id: r.status for r in seen}["broken"] == "unavailable"
