"""Drafting workflows with a scripted planner: retrieval, prompt, validation and bounded repair."""

import json
import re
from datetime import date

import pytest
from typer.testing import CliRunner

import tests.workflows.toytools  # noqa: F401  (registers the toy tools the drafts use)
from dxgraph.cli import app
from dxgraph.errors import ConfigError
from dxgraph.models.scripted import ScriptedModel
from dxgraph.testing.stub_server import StubServer
from dxgraph.workflows.draft import build_prompt, draft_workflow, extract_yaml, render_draft
from dxgraph.workflows.loader import parse_workflow
from dxgraph.workflows.retrieval import search

QUESTION = "Is there glaucomatous optic neuropathy (enlarged optic cup) on this fundus photograph?"


def cite_as(prompt: str) -> list[dict]:
    """What a model would copy: the 'Cite as' entries of the passages in the prompt."""
    return [json.loads(m) for m in re.findall(r"^Cite as: (\{.*\})$", prompt, flags=re.M)]


def workflow_yaml(refs: list[dict], *, tool: str = "toy_fraction", rule: str = "frac >= 0.6",
                  answer_rule: str = 'answer == "yes"') -> str:
    ref_lines = "\n".join(
        f"  - id: {r['id']}\n    citation: {json.dumps(r['citation'])}" + (f"\n    url: {r['url']}" if r.get("url") else "")
        for r in refs)
    return f"""id: drafted_cup
name: Enlarged optic cup (draft)
version: "0.1"
modality: fundus photograph
question: Is the optic cup enlarged?
outcomes: {{positive: glaucoma suspect, negative: no sign}}
references:
{ref_lines}
inputs: [{{name: image, dims: color}}]
indicators:
  - id: cup
    description: share of cup pixels; 0.6 screening cut-off from {refs[0]['id']}
    kind: quantitative
    steps:
      - {{tool: toy_load, inputs: {{path: image}}, outputs: img}}
      - {{tool: toy_split, inputs: {{image: img}}, args: {{cut: 0.5}}, outputs: [low, high]}}
      - {{tool: {tool}, inputs: {{low: low, high: high}}, outputs: frac}}
    unit: ratio
    rule: {rule}
    references: [{refs[0]['id']}]
  - id: haemorrhage
    description: disc haemorrhage asked of the image
    kind: qualitative
    steps:
      - {{tool: toy_load, inputs: {{path: image}}, outputs: img}}
      - {{tool: toy_answer, inputs: {{image: img}}, outputs: answer}}
    rule: {json.dumps(answer_rule)}
    references: [{refs[-1]['id']}]
decision: {{method: any}}
"""


def prompt_of(model: ScriptedModel, call: int = 0) -> str:
    return model.calls[call][1].text


async def test_invalid_draft_is_repaired_with_its_file_line_errors():
    def reply(messages):
        refs = cite_as(messages[1].text)[:2]
        if len(messages) == 2:  # first answer: unknown tool and a bad rule
            return "Here it is:\n```yaml\n" + workflow_yaml(refs, tool="segment_glaucoma", answer_rule="answer === 'yes'") + "```"
        return "```yaml\n" + workflow_yaml(refs) + "```"

    model = ScriptedModel(reply)
    result = await draft_workflow(QUESTION, model, k=6, max_repairs=3)
    assert result.attempts == 2 and result.repairs == 1
    assert result.workflow.id == "drafted_cup" and result.workflow.indicators[0].rule == "frac >= 0.6"
    first_errors = result.errors[0]
    assert any(re.match(r"draft\.yaml:\d+: unknown tool 'segment_glaucoma'", e) for e in first_errors), first_errors
    assert any(re.match(r"draft\.yaml:\d+: .*rule", e) for e in first_errors), first_errors
    # the repair request carries those errors and the rejected answer
    repair = model.calls[1]
    assert "segment_glaucoma" in repair[-2].text and all(e in repair[-1].text for e in first_errors)
    # the validated text is what parse_workflow accepts
    assert parse_workflow(result.yaml_text).model_dump() == result.workflow.model_dump()


async def test_prompt_holds_retrieved_passages_sources_and_tool_schemas():
    model = ScriptedModel(lambda m: "```yaml\n" + workflow_yaml(cite_as(m[1].text)) + "```")
    result = await draft_workflow(QUESTION, model, k=4)
    prompt = prompt_of(model)
    assert len(result.passages) == 4
    for p in result.passages:
        assert p.title in prompt and p.source in prompt and f'"id": "{p.ref}"' in prompt
    for name in ("toy_load", "toy_split", "toy_fraction", '"outputs":["low","high"]'):
        assert name in prompt
    assert "FORMAT EXAMPLE" in prompt and "id: glaucoma" in prompt
    assert QUESTION in prompt
    assert "foster2002" in {p.ref for p in result.passages}  # real retrieval: the cup-to-disc passage


async def test_always_invalid_drafts_raise_after_max_repairs():
    model = ScriptedModel(lambda m: workflow_yaml(cite_as(m[1].text), tool="no_such_tool"))
    with pytest.raises(ConfigError) as info:
        await draft_workflow(QUESTION, model, max_repairs=2)
    assert len(model.calls) == 3
    assert "after 2 repair round(s)" in str(info.value) and "unknown tool 'no_such_tool'" in str(info.value)


async def test_invented_or_missing_references_are_sent_back():
    fake = [{"id": "smith2099", "citation": "Smith J. A paper that does not exist. 2099.", "url": "https://doi.org/10.0/fake"}]

    def reply(messages):
        return workflow_yaml(fake if len(messages) == 2 else cite_as(messages[1].text))

    model = ScriptedModel(reply)
    result = await draft_workflow(QUESTION, model, max_repairs=1)
    assert result.attempts == 2
    assert any("'smith2099' is not a source of the guideline corpus" in e for e in result.errors[0])
    assert {r.id for r in result.workflow.references} <= {p.ref for p in result.passages}


async def test_python_tags_are_never_constructed():
    evil = "!!python/object/apply:os.system ['echo pwned']\n"

    def reply(messages):
        return evil if len(messages) == 2 else workflow_yaml(cite_as(messages[1].text))

    model = ScriptedModel(reply)
    result = await draft_workflow(QUESTION, model, max_repairs=1)
    assert result.attempts == 2 and "not valid YAML" in result.errors[0][0]


async def test_zero_repairs_means_one_answer():
    model = ScriptedModel(["not yaml: [", "never asked"])
    with pytest.raises(ConfigError, match="after 0 repair"):
        await draft_workflow(QUESTION, model, max_repairs=0)
    assert len(model.calls) == 1


def test_extract_yaml_takes_the_fenced_block():
    assert extract_yaml("Sure!\n```yaml\nid: a\n```\nDone.") == "id: a\n"
    assert extract_yaml("id: b\n") == "id: b\n"


async def test_render_draft_header_and_it_still_validates():
    model = ScriptedModel(lambda m: workflow_yaml(cite_as(m[1].text)))
    result = await draft_workflow(QUESTION, model)
    text = render_draft(result, model_name="qwen", question=QUESTION + "\n  (PA film)", when=date(2025, 1, 2))
    first = text.splitlines()[0]
    assert first.startswith("# DRAFT written by qwen on 2025-01-02 from ") and first.endswith("— review before use")
    assert "(PA film)" in first
    assert parse_workflow(text).id == "drafted_cup"


def test_build_prompt_lists_only_given_reference_ids():
    passages = search("pleural effusion on a chest radiograph", k=2)
    prompt = build_prompt("Is there pleural effusion?", passages)
    ids = re.search(r"\(ids: ([^)]*)\)", prompt).group(1).split(", ")
    assert sorted(ids) == sorted({p.ref for p in passages})


def test_cli_without_a_planner_model_says_what_to_set(tmp_path):
    result = CliRunner().invoke(app, ["workflows", "draft", QUESTION, "-o", str(tmp_path / "d.yaml")])
    assert isinstance(result.exception, ConfigError)
    assert "DXGRAPH_PLANNER_MODEL" in str(result.exception)
    assert not (tmp_path / "d.yaml").exists()


def test_cli_drafts_through_an_openai_compatible_server(tmp_path):
    def responder(body):
        msgs = body["messages"]
        prompt = msgs[1]["content"] if isinstance(msgs[1]["content"], str) else msgs[1]["content"][0]["text"]
        refs = cite_as(prompt)
        bad = len(msgs) == 2
        return "```yaml\n" + workflow_yaml(refs, rule="frac >= " if bad else "frac >= 0.6") + "```"

    out = tmp_path / "drafts" / "cup.yaml"
    with StubServer(responder=responder) as server:
        result = CliRunner().invoke(app, ["workflows", "draft", QUESTION, "-o", str(out),
                                          "--model", f"openai:planner-x@{server.base_url}"])
        assert result.exit_code == 0, result.output + repr(result.exception)
        assert server.requests == 2
    text = out.read_text()
    assert text.startswith("# DRAFT written by planner-x on ")
    assert parse_workflow(text).indicators[0].rule == "frac >= 0.6"
    assert "repair rounds: 1" in result.output and "foster2002" in result.output


REAL_DRAFT = """```yaml
id: pleural_effusion
name: Pleural effusion (PA chest radiograph) - draft
version: "0.1"
modality: chest radiograph
question: Is there a pleural effusion?
outcomes: {positive: pleural effusion suspected, negative: no effusion seen}
references:
  - {id: blackmore1996, citation: "Blackmore CC et al. Pleural fluid volume estimation. Acad Radiol 1996;3:103-109.", url: "https://doi.org/10.1016/S1076-6332(05)80373-3"}
inputs: [{name: image, dims: grey}]
indicators:
  - id: blunted_angle
    description: blunted costophrenic angle (about 200 mL on an erect PA film; blackmore1996)
    kind: qualitative
    steps:
      - {tool: load_image, inputs: {path: image}, args: {expect: grey}, outputs: img}
      - {tool: segment_heart_thorax, inputs: {image: img}, outputs: [heart, thorax]}
      - tool: vlm_ask
        inputs: {image: img, overlay: thorax}
        args: {question: "Is either costophrenic angle blunted?"}
        outputs: [answer, rationale]
    rule: answer == "yes"
    references: [blackmore1996]
decision: {method: any}
```"""


async def test_a_draft_with_the_real_tools_validates():
    model = ScriptedModel([REAL_DRAFT])
    result = await draft_workflow("Is there pleural effusion on this chest radiograph?", model, k=4)
    assert result.attempts == 1 and result.workflow.indicators[0].steps[-1].tool == "vlm_ask"
    assert "blackmore1996" in {p.ref for p in result.passages}
    for name in ("load_image", "segment_heart_thorax", "vlm_ask", "cardiothoracic_ratio"):
        assert f'"name":"{name}"' in prompt_of(model)
