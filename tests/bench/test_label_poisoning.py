"""Label poisoning (issue 13, defect 4): scramble the truth and nothing an agent or a tool
does may change. Bundled cases are used on purpose: their ids are named after their labels
(``eczema-03``), the realistic leak path a made-up id like ``d1`` cannot exercise."""

from __future__ import annotations

import pytest

from dxgraph.agents.doctor import STRATEGIES, LLMDoctor
from dxgraph.bench.agents import AgentFactory
from dxgraph.bench.dialogue import run_consultation
from dxgraph.models.scripted import ScriptedModel
from dxgraph.simulator.cases import load_cases
from dxgraph.simulator.personas import load_personas

CASES = load_cases("bundled", split="test")[::23][:3]


def _scrambled(cases):
    """Every case gets another case's label and differential (a derangement)."""
    return [c.model_copy(update={"diagnosis": cases[(i + 1) % len(cases)].diagnosis,
                                 "differential": list(cases[(i + 1) % len(cases)].differential)})
            for i, c in enumerate(cases)]


async def _play(case, doctor, strategy, persona):
    res = await run_consultation(case, persona, doctor, AgentFactory().patient("rules"), None,
                                 strategy=strategy, seed=3)
    return res.final, [(t.role, t.text) for t in res.turns]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_rule_doctor_is_blind_to_scrambled_labels(strategy):
    persona = load_personas()["choleric"]
    doctor = AgentFactory().doctor("rules", strategy)
    poisoned = _scrambled(CASES)
    assert all(p.diagnosis != c.diagnosis for p, c in zip(poisoned, CASES))
    for case, bad in zip(CASES, poisoned):
        truth = await _play(case, doctor, strategy, persona)
        assert await _play(bad, doctor, strategy, persona) == truth, case.id


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_llm_doctor_prompts_are_identical_under_scrambled_labels(strategy):
    def answer(messages):
        n = sum(1 for m in messages if m.role == "assistant")
        return ({"question": "How long have you had it?"} if n < 2 and strategy != "single" else
                {"final": {"label": "eczema", "confidence": 0.5, "differential": [], "basis": "b"}})

    persona = load_personas()["neutral"]
    for case, bad in zip(CASES, _scrambled(CASES)):
        seen = []
        for c in (case, bad):
            model = ScriptedModel(answer)
            await _play(c, LLMDoctor(model, strategy=strategy), strategy, persona)
            texts = [[m.text for m in call] for call in model.calls]
            seen.append(texts)
            # Neither the file's id (named after the label) nor its stem reaches the model.
            assert not any(c.id in t for call in texts for t in call)
        assert seen[0] == seen[1], case.id


async def test_workflow_measurements_ignore_a_poisoned_labels_csv(tmp_path):
    from dxgraph.bench.evaluate import evaluate_workflow
    from dxgraph.tools.cache import ToolCache
    from dxgraph.tools.runner import ToolRunner
    from dxgraph.workflows.loader import parse_workflow
    from tests.workflows.toytools import FRAC_STEPS, TOY_HEAD

    wf = parse_workflow(TOY_HEAD + "  - id: frac\n    description: share of high pixels\n    kind: quantitative\n"
                        + FRAC_STEPS + "    rule: frac >= 0.5\ndecision: {method: weighted, threshold: 0.5}\n")
    (tmp_path / "hi.txt").write_text("0.9 0.9 0.1\n")
    (tmp_path / "lo.txt").write_text("0.1 0.1 0.9\n")
    rows = [("a", "hi.txt"), ("b", "lo.txt"), ("c", "hi.txt"), ("d", "lo.txt")]
    reports = []
    for labels, truths in (([1, 0, 1, 0], [0.66, 0.33, 0.66, 0.33]), ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])):
        body = "".join(f"{i},{img},{lab},{t}\n" for (i, img), lab, t in zip(rows, labels, truths))
        (tmp_path / "labels.csv").write_text("id,image,label,frac\n" + body)
        reports.append(await evaluate_workflow(wf, tmp_path, runner=ToolRunner(ToolCache(tmp_path / "cache"))))
    measured = [[(s["id"], s["pred"], s["outcome"], s["values"]) for s in r["samples"]] for r in reports]
    assert measured[0] == measured[1]
    assert reports[0]["metrics"] != reports[1]["metrics"]  # only the scoring saw the labels
