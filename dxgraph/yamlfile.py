"""Where things are in a YAML file: the line of every key path, and PyYAML's errors as one line.

Shared by the workflow loader and the settings file (``dxgraph.yaml``), so both report
problems as ``FILE:LINE: message`` in the same words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from dxgraph.errors import ConfigError

__all__ = ["compose", "line_for", "lines_and_duplicates", "load_checked", "safe_load", "yaml_error",
           "MAX_DEPTH", "MAX_NODES"]

_FAST = getattr(yaml, "CSafeLoader", None)  # libyaml: ~10x faster than the pure-Python loader

# Limits checked before anything walks or builds the document. A workflow or settings file
# is a few hundred values ~10 levels deep; aliases nested nine deep and nine wide expand a
# 449-byte file to 9**9 values, and '[' * 5000 overflows every recursive walker.
MAX_DEPTH = 64
MAX_NODES = 100_000
_OPEN = (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken, yaml.BlockSequenceStartToken,
         yaml.BlockMappingStartToken)
_CLOSE = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)


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


def _check_depth(text: str, file: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH from the token stream, which no parser recurses over.

    A scanner error ends the check silently: the parser, which then nests no deeper than the
    tokens seen so far, reports it where a person would look (the scanner often errs lines later).
    """
    try:
        _scan_depth(text, file)
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):  # libyaml's own limit (1000), met while it looks ahead
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=file,
                              line=mark.line + 1 if mark else 1) from None


def _scan_depth(text: str, file: str) -> None:
    depth = 0
    for token in yaml.scan(text, Loader=_FAST or yaml.SafeLoader):
        if isinstance(token, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep: a workflow or settings file "
                                  "is a few levels of keys and lists", file=file, line=token.start_mark.line + 1)
        elif isinstance(token, _CLOSE):
            depth -= 1


def _compose_checked(text: str, file: str) -> yaml.Node | None:
    """The node graph, after the depth check; scanner and parser errors propagate as YAMLError."""
    _check_depth(text, file)
    try:
        return compose(text)
    except RecursionError:  # not reached after _check_depth; a guard, not a path
        raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=file, line=1) from None


def _walk(root: yaml.Node, file: str) -> tuple[dict[tuple, int], list[ConfigError]]:
    """One pass over the node graph: lines, duplicate keys, and the size aliases expand to.

    A node reached again through an alias is counted (memoised, so counting is linear in the
    file) but not walked again; an alias inside its own anchor is refused.
    """
    lines: dict[tuple, int] = {(): root.start_mark.line + 1}
    errors: list[ConfigError] = []
    size: dict[int, int] = {}
    active: set[int] = set()

    def walk(node: yaml.Node, path: tuple) -> int:
        key = id(node)
        if key in size:
            return size[key]
        if key in active:
            raise ConfigError("an alias refers to the anchor it is inside (a value that contains itself)",
                              file=file, line=node.start_mark.line + 1)
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                k = key_node.value if isinstance(key_node, yaml.ScalarNode) else f"<{key_node.tag}>"
                line = key_node.start_mark.line + 1
                if k in seen:
                    errors.append(ConfigError(f"key {k!r} appears twice (first on line {seen[k]})", file=file, line=line))
                seen[k] = line
                lines.setdefault(path + (k,), line)
                total += walk(key_node, path + (k,)) + walk(value_node, path + (k,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault(path + (i,), item.start_mark.line + 1)
                total += walk(item, path + (i,))
        if total > MAX_NODES:
            raise ConfigError(f"the document expands to more than {MAX_NODES} values (aliases repeating aliases?)",
                              file=file, line=node.start_mark.line + 1)
        active.discard(key)
        size[key] = total
        return total

    walk(root, ())
    return lines, errors


def load_checked(text: str, file: str) -> tuple[Any, dict[tuple, int], list[ConfigError]]:
    """Parse once under the depth and size limits: the data, the line map and duplicate keys.

    Raises:
        ConfigError: too deep, too large once aliases are expanded, or a value containing itself.
        yaml.YAMLError: not YAML (``yaml_error`` words it).
    """
    root = _compose_checked(text, file)
    if root is None:
        return None, {}, []
    lines, errors = _walk(root, file)
    loader = yaml.SafeLoader("")
    try:
        data = loader.construct_document(root)
    finally:
        loader.dispose()
    return data, lines, errors


def lines_and_duplicates(text: str, file: str) -> tuple[dict[tuple, int], list[ConfigError]]:
    """The line of every key/item path and each duplicate key, under ``load_checked``'s limits."""
    _, lines, errors = load_checked(text, file)
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
    if isinstance(exc, yaml.reader.ReaderError):  # counted in characters from the start, not marked
        before = text[: exc.position]
        line, col = before.count("\n"), exc.position - (before.rfind("\n") + 1)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"control character U+{code:04X} at column {col + 1}: remove it"
    src = text.splitlines()
    msg = problem
    opened = _unclosed_quote_above(src, line) if pm else None
    if opened is not None:  # a quote left open swallows the lines below; PyYAML errs where it closes
        line, msg = opened[0], f"the quote opened at column {opened[1] + 1} is never closed on its line"
    elif problem == "mapping values are not allowed here" or "found '<block mapping start>'" in problem:
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
        line, at = _opener_at_or_before(src, cm.line, cm.column)  # the mark may sit past the opener
        opener = src[line][at] if at >= 0 else "["
        msg = f"the {opener!r} at column {max(at, 0) + 1} is never closed with {']' if opener == '[' else '}'!r}"
    elif problem == "could not find expected ':'" and cm:
        line, msg = cm.line, f"{_short(src[cm.line].strip())!r} is not 'key: value': add the ':' or indent it as part of the value above"
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


def _short(text: str, limit: int = 80) -> str:
    """A line of the file quoted in a message, cut so the message stays one readable line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _opener_at_or_before(src: list[str], line: int, column: int) -> tuple[int, int]:
    """(line, column) of the last '[' or '{' at or before the mark; column -1 if there is none."""
    for i in range(min(line, len(src) - 1), -1, -1):
        text = src[i][: column + 1] if i == line else src[i]
        at = max(text.rfind("{"), text.rfind("["))
        if at >= 0:
            return i, at
    return min(line, max(len(src) - 1, 0)), -1


_QUOTE_OPEN = re.compile(r"""^\s*(?:-\s+)?(?:[^'"#:]+:\s+)?(['"])""")


def _unclosed_quote_above(src: list[str], line: int) -> tuple[int, int] | None:
    """The (line, column) of a quote opened and not closed on the nearest value line above ``line``."""
    for i in range(min(line, len(src)) - 1, -1, -1):
        text = src[i]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        m = _QUOTE_OPEN.match(text)
        if not m:
            return None
        quote, rest = m.group(1), text[m.end():]
        rest = rest.replace("''", "") if quote == "'" else rest.replace("\\\\", "").replace('\\"', "")
        return (i, m.start(1)) if quote not in rest else None
    return None


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
    key = _short(here.strip().split(":")[0])
    return (f"bad indentation: key {key!r} is at column {col + 1}, but the key above it "
            f"({_short(text.strip(' -').split(':')[0])!r}, line {above + 1}) is at column {key_col + 1}")
