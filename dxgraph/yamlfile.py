"""Where things are in a YAML file: the line of every key path, and PyYAML's errors as one line.

Shared by the workflow loader and the settings file (``dxgraph.yaml``), so both report
problems as ``FILE:LINE: message`` in the same words.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from dxgraph.errors import ConfigError

__all__ = ["compose", "line_for", "lines_and_duplicates", "safe_load", "yaml_error"]

_FAST = getattr(yaml, "CSafeLoader", None)  # libyaml: ~10x faster than the pure-Python loader


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` through libyaml when it is there. A failure is parsed again by the
    pure-Python loader, whose error wording (problem, context, marks) ``yaml_error`` reads."""
    if _FAST is not None:
        try:
            return yaml.load(text, Loader=_FAST)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def compose(text: str) -> yaml.Node | None:
    """``yaml.compose`` with the safe loader, through libyaml when it is there (see ``safe_load``)."""
    if _FAST is not None:
        try:
            return yaml.compose(text, Loader=_FAST)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def lines_and_duplicates(text: str, file: str) -> tuple[dict[tuple, int], list[ConfigError]]:
    """Walk PyYAML's node tree once: the line of every key/item path, and each duplicate key."""
    lines: dict[tuple, int] = {}
    errors: list[ConfigError] = []

    def walk(node: yaml.Node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    errors.append(ConfigError(f"key {key!r} appears twice (first on line {seen[key]})", file=file, line=line))
                seen[key] = line
                lines[path + (key,)] = line
                walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (i,)] = item.start_mark.line + 1
                walk(item, path + (i,))

    root = compose(text)
    if root is not None:
        lines[()] = root.start_mark.line + 1
        walk(root, ())
    return lines, errors


def line_for(lines: dict[tuple, int], loc: Iterable[Any]) -> int:
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get((), 1)


def yaml_error(exc: yaml.YAMLError, text: str, file: str) -> ConfigError:
    """PyYAML's multi-line report as one plain ``FILE:LINE: not valid YAML: ...`` line.

    PyYAML names parser states ("expected <block end>, but found '<block mapping start>'");
    the common causes are put in the words of the file instead, with the line to fix.
    """
    pm, cm = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    problem, context = getattr(exc, "problem", None) or str(exc).splitlines()[0], getattr(exc, "context", None) or ""
    line, col = (pm.line, pm.column) if pm else (cm.line, cm.column) if cm else (0, 0)
    src = text.splitlines()
    msg = problem
    if problem == "mapping values are not allowed here" or "found '<block mapping start>'" in problem:
        msg = _indent_message(src, line) or f"a ':' inside a value at column {col + 1}: put the value in quotes"
    elif "but found '-'" in problem and cm:
        msg = (f"bad indentation: a list item '-' at column {col + 1} among the keys of the mapping that starts "
               f"on line {cm.line + 1}; a list goes under a key that ends in ':'")
    elif "but found '<scalar>'" in problem:
        msg = f"unexpected text at column {col + 1} after a complete value: quote the whole value"
    elif problem.startswith("found character '\\t'"):
        msg = f"a tab at column {col + 1}: indent with spaces, not tabs"
    elif problem.endswith("that cannot start any token"):
        msg = f"{problem.split()[2]} cannot start a value (column {col + 1}): put the value in quotes"
    elif problem.startswith("found unknown escape character"):
        escape = "\\" + problem.split("'")[1]
        msg = f"unknown escape '{escape}' in a double-quoted value (column {col + 1}): use single quotes"
    elif "quoted scalar" in context and cm:
        line, msg = cm.line, f"the quote opened at column {cm.column + 1} is never closed"
    elif context.startswith("while parsing a flow ") and cm:
        opener = src[cm.line][cm.column] if cm.line < len(src) else "["
        line, msg = cm.line, f"the {opener!r} at column {cm.column + 1} is never closed with {']' if opener == '[' else '}'!r}"
    elif problem == "could not find expected ':'" and cm:
        line, msg = cm.line, f"{src[cm.line].strip()!r} is not 'key: value': add the ':' or indent it as part of the value above"
    elif problem.startswith("could not determine a constructor for the tag"):
        tag = problem.split("'")[1].replace("tag:yaml.org,2002:", "!!")
        msg = f"tag {tag!r} is not allowed: a workflow is plain YAML, without tags"
    elif problem.startswith("found undefined alias"):
        msg = f"alias *{problem.split(chr(39))[1]} refers to no anchor &{problem.split(chr(39))[1]}"
    elif problem == "but found another document":
        msg = "a second YAML document ('---'): a workflow file holds one"
    elif context:
        msg = f"{problem} ({context} on line {cm.line + 1})" if cm else f"{problem} ({context})"
    return ConfigError(f"not valid YAML: {msg}", file=file, line=line + 1)


def _indent_message(src: list[str], line: int) -> str | None:
    """For a key indented unlike the key above it: where the key above is, and where this one."""
    here = src[line] if line < len(src) else ""
    col = len(here) - len(here.lstrip(" "))
    if not here.strip() or ":" not in here:
        return None
    above = next((i for i in range(line - 1, -1, -1) if src[i].strip() and not src[i].lstrip().startswith("#")), None)
    if above is None:
        return None
    text = src[above]
    key_col = len(text) - len(text.lstrip(" -"))  # "  - name: x": the key sits after the dash
    if key_col == col or text.rstrip().endswith(":"):
        return None
    key = here.strip().split(":")[0]
    return (f"bad indentation: key {key!r} is at column {col + 1}, but the key above it "
            f"({text.strip(' -').split(':')[0]!r}, line {above + 1}) is at column {key_col + 1}")
