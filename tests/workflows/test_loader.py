import textwrap

import pytest

import tests.workflows.toytools  # noqa: F401  (registers the toy tools)
from dxgraph.workflows.loader import WorkflowErrors, find_workflow, list_workflows, parse_workflow

GOOD = textwrap.dedent(
    """\
    id: toy
    name: Toy
    version: 2
    modality: toy
    question: Is it high?
    outcomes: {positive: high, negative: low}
    inputs:
      - name: image
    indicators:
      - id: frac
        description: share of high pixels
        kind: quantitative
        steps:
          - tool: toy_load
            inputs: {path: image}
            outputs: img
          - tool: toy_split
            inputs: {image: img}
            args: {cut: 0.5}
            outputs: [low, high]
          - tool: toy_fraction
            inputs: {low: low, high: high}
            outputs: frac
        rule: frac >= 0.5
    decision: {method: weighted, threshold: 0.5}
    """
)


def errors_of(text: str) -> list[str]:
    with pytest.raises(WorkflowErrors) as info:
        parse_workflow(text, file="wf.yaml")
    return [str(e) for e in info.value.errors]


def test_good_workflow_parses_and_version_becomes_text():
    wf = parse_workflow(GOOD, file="wf.yaml")
    assert wf.id == "toy" and wf.version == "2" and wf.indicators[0].steps[1].args == {"cut": 0.5}


def test_unknown_key_reports_its_line():
    text = GOOD.replace("    rule: frac >= 0.5\n", "    rule: frac >= 0.5\n    wieght: 2\n")
    assert errors_of(text) == ["wf.yaml:25: unknown key 'wieght' at indicators.0 (did you mean 'weight'?)"]


def test_unknown_key_without_a_close_name_lists_the_allowed_keys():
    [msg] = errors_of(GOOD.replace("      - tool: toy_load\n", "      - tool: toy_load\n        colour: red\n"))
    assert msg == "wf.yaml:15: unknown key 'colour' at indicators.0.steps.0; allowed keys: tool, inputs, args, outputs"


def test_unknown_tool_reports_the_tool_line():
    [msg] = errors_of(GOOD.replace("tool: toy_fraction", "tool: toy_fractoin"))
    assert msg.startswith("wf.yaml:21: unknown tool 'toy_fractoin' (did you mean 'toy_fraction'?)")


def test_unresolved_input_names_the_step_and_line():
    [msg] = errors_of(GOOD.replace("inputs: {low: low, high: high}", "inputs: {low: low, high: hihg}"))
    assert msg.startswith("wf.yaml:22: input 'hihg' of step 'toy_fraction'")


def test_cycle_is_detected():
    text = GOOD.replace("inputs: {image: img}", "inputs: {image: frac}").replace("inputs: {path: image}\n        outputs: img", "inputs: {path: image}\n        outputs: unused")
    msgs = errors_of(text)
    assert any("cycle" in m and m.startswith("wf.yaml:13:") for m in msgs), msgs


def test_bad_rule_and_rule_with_unknown_name():
    [msg] = errors_of(GOOD.replace("rule: frac >= 0.5", "rule: frac >= "))
    assert msg.startswith("wf.yaml:24:") and "not a valid expression" in msg
    [msg] = errors_of(GOOD.replace("rule: frac >= 0.5", "rule: vcdr >= 0.5"))
    assert msg.startswith("wf.yaml:24:") and "'vcdr'" in msg
    [msg] = errors_of(GOOD.replace("rule: frac >= 0.5", "rule: __import__('os')"))
    assert "calls are not allowed" in msg


def test_wrong_types_are_reported_with_lines():
    [msg] = errors_of(GOOD.replace("kind: quantitative", "kind: numeric"))
    assert msg.startswith("wf.yaml:12: indicators.0.kind: Input should be 'quantitative' or 'qualitative'")
    [msg] = errors_of(GOOD.replace("args: {cut: 0.5}", "args: {cut: high}"))
    assert msg == "wf.yaml:19: arg 'cut' of tool 'toy_split' must be a number, got 'high'"


def test_missing_key_and_bad_decision():
    msgs = errors_of(GOOD.replace("question: Is it high?\n", "").replace("threshold: 0.5", "k: 2"))
    assert "wf.yaml:1: missing required key 'question'" in msgs
    assert any("needs a 'threshold'" in m for m in msgs)


def test_yaml_syntax_error_and_duplicate_key_have_lines():
    [msg] = errors_of(GOOD.replace("modality: toy", "modality: [toy"))
    assert msg == "wf.yaml:4: not valid YAML: the '[' at column 11 is never closed with ']'"
    [msg] = errors_of(GOOD.replace("modality: toy", "modality: toy\nmodality: again"))
    assert msg == "wf.yaml:5: key 'modality' appears twice (first on line 4)"


def test_yaml_is_loaded_safely():
    msgs = errors_of("!!python/object/apply:os.system ['echo pwned']\n")
    assert "not valid YAML" in msgs[0]


def test_not_a_mapping():
    assert errors_of("- a\n- b\n") == ["wf.yaml:1: a workflow file must be a mapping with keys id, name, inputs, indicators, decision..."]


def test_builtin_workflows_all_validate():
    ids = [wf.id for wf, _ in list_workflows()]
    assert ids == ["cardiomegaly", "diabetic_retinopathy", "glaucoma", "hfref"]
    wf, _ = find_workflow("glaucoma")
    assert {r.id for r in wf.references} >= {"egs2021", "ddls2002"}
    assert all(ind.references for ind in wf.indicators)


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("  - name: image\n", "  - name: image\n   description: x\n",
         "wf.yaml:9: not valid YAML: bad indentation: key 'description' is at column 4, but the key above it ('name', line 8) is at column 5"),
        ("name: Toy\n", "name: Toy\n  version: 3\n",
         "wf.yaml:3: not valid YAML: bad indentation: key 'version' is at column 3, but the key above it ('name', line 2) is at column 1"),
        ("question: Is it high?", 'question: "Is it high?',
         "wf.yaml:5: not valid YAML: the quote opened at column 11 is never closed"),
        ("question: Is it high?", "question: Is it: high?",
         "wf.yaml:5: not valid YAML: a ':' inside a value at column 16: put the value in quotes"),
        ("  - name: image\n", "  - name: image\n\t\n", "wf.yaml:9: not valid YAML: a tab at column 1: indent with spaces, not tabs"),
        ("    rule: frac >= 0.5\n", "    rule: frac >= 0.5\n    - oops\n",
         "wf.yaml:25: not valid YAML: bad indentation: a list item '-' at column 5 among the keys of the mapping that starts on line 10; a list goes under a key that ends in ':'"),
    ],
    ids=["key-off-list-item", "key-deeper-than-sibling", "unclosed-quote", "colon-in-value", "tab", "list-item-among-keys"],
)
def test_yaml_syntax_errors_are_one_plain_line_at_the_cause(old, new, expected):
    [msg] = errors_of(GOOD.replace(old, new, 1))
    assert msg == expected and "<block" not in msg


def test_schema_and_tool_errors_are_reported_together_sorted_by_line():
    text = (GOOD.replace("question: Is it high?", "qestion: Is it high?")
            .replace("tool: toy_fraction", "tool: toy_fractoin") + "colour: red\n")
    msgs = errors_of(text)
    assert [m.split(":")[1] for m in msgs] == ["1", "5", "21", "26"], msgs
    assert "did you mean 'question'?" in msgs[1] and "unknown tool 'toy_fractoin'" in msgs[2]


def test_checks_that_need_a_broken_part_are_skipped_not_guessed():
    # With 'inputs' invalid, the step's input 'image' cannot be resolved: no second, false error about it.
    assert errors_of(GOOD.replace("  - name: image", "  - name: Image")) == [
        "wf.yaml:8: inputs.0.name: String should match pattern '^[a-z][a-z0-9_]*$'"]
