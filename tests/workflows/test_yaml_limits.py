"""YAML that attacks the parser: alias bombs, deep nesting, self-reference, stray characters."""

import re

import pytest

from dxgraph.config import load_settings
from dxgraph.errors import ConfigError
from dxgraph.workflows.loader import WorkflowErrors, builtin_dir, parse_workflow
from dxgraph.yamlfile import MAX_DEPTH, MAX_NODES, load_checked


def _bomb(levels: int, width: int = 9) -> str:
    refs = lambda i: ", ".join([f"*a{i - 1}"] * width)  # noqa: E731
    return f"a0: &a0 [{', '.join(['x'] * width)}]\n" + "".join(f"a{i}: &a{i} [{refs(i)}]\n" for i in range(1, levels))


def _one(text: str) -> ConfigError:
    with pytest.raises(WorkflowErrors) as info:
        parse_workflow(text, "w.yaml")
    [err] = info.value.errors
    assert "\n" not in str(err)
    return err


@pytest.mark.parametrize("text, line, words", [
    (_bomb(7), 6, "expands to more than"),  # a5 holds 9**6 values
    ("[" * 5000, 1, "nested more than"),
    ("{a: " * 3000, 1, "nested more than"),
    ("".join(" " * i + f"k{i}:\n" for i in range(1300)), MAX_DEPTH + 1, "nested more than"),
    ("a: &r [1, *r]\n", 1, "contains itself"),
    ("a: &r {b: *r}\n", 1, "contains itself"),
    ("id: x\nname: [", 2, "'[' at column 7 is never closed"),
    ("id: x\nname: {", 2, "'{' at column 7 is never closed"),
    ("id: x\nname: y\nversion: a\x00b\n", 3, "control character U+0000 at column 11"),
    ("id: x\n\nname: y\nversion: a\x07b\n", 4, "control character U+0007"),
    ("id: x\nname: 'abc\nversion: '1'\nother: 2\n", 2, "quote opened at column 7 is never closed"),
    ('id: x\nname: "abc\nversion: "1"\n', 2, "quote opened at column 7 is never closed"),
])
def test_hostile_yaml_is_one_error_at_its_line(text, line, words):
    err = _one(text)
    assert err.line == line and words in str(err), str(err)


def test_aliases_are_counted_once_per_use_and_a_fair_use_passes():
    data, lines, errors = load_checked(_bomb(5), "w.yaml")  # 9**5 = 59049 values, under the limit
    assert MAX_NODES > 9 ** 5 and len(data["a4"]) == 9 and not errors
    assert lines[("a4",)] == 5
    with pytest.raises(ConfigError, match="expands to more than"):
        load_checked(_bomb(6), "w.yaml")  # 531441 values


def test_builtin_workflows_pass_the_limits():
    for path in builtin_dir().glob("*.yaml"):
        load_checked(path.read_text(), str(path))


def test_settings_file_has_the_same_limits(tmp_path):
    cfg = tmp_path / "dxgraph.yaml"
    cfg.write_text(_bomb(8))
    with pytest.raises(ConfigError, match="expands to more than") as info:
        load_settings(cfg)
    assert info.value.file == str(cfg)
    cfg.write_text("models:\n  doctor: 'rules\nother: 'x'\n")
    with pytest.raises(ConfigError, match="never closed") as info:
        load_settings(cfg)
    assert info.value.line == 2


def _glaucoma() -> str:
    return (builtin_dir() / "glaucoma.yaml").read_text()


@pytest.mark.parametrize("old, new, words", [
    ("inputs:\n  - name: image\n", "inputs:\n  - name: image\n    dims: color\n  - name: image\n", "inputs name 'image' appears twice"),
    ("references:\n  - id: egs2021\n", "references:\n  - id: egs2021\n    citation: x\n  - id: egs2021\n", "references id 'egs2021' appears twice"),
])
def test_repeated_input_names_and_reference_ids_are_refused(old, new, words):
    with pytest.raises(WorkflowErrors) as info:
        parse_workflow(_glaucoma().replace(old, new, 1), "w.yaml")
    assert any(words in str(e) for e in info.value.errors), str(info.value)


@pytest.mark.parametrize("weight", [".inf", "-.inf", ".nan", "1e400"])
def test_non_finite_numbers_are_refused(weight):
    text = _glaucoma()
    first = re.search(r"^    weight: .*$", text, re.M)
    with pytest.raises(WorkflowErrors) as info:
        parse_workflow(text[: first.start()] + f"    weight: {weight}" + text[first.end():], "w.yaml")
    assert any("give a finite number" in str(e) for e in info.value.errors), str(info.value)
