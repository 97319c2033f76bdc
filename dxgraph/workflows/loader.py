"""YAML -> Workflow, with every error reported as ``FILE:LINE: message``.

The text is read twice by PyYAML's safe loader: once composed into nodes (to learn the
line of every key and list item) and once into plain data. pydantic validates the data;
each error's location path is mapped back to a line. Checks that need the tool registry
(unknown tool, unresolved input, cycle, rule names) follow and report the same way. All
errors of a file are collected, not just the first: when pydantic rejects part of a file,
the rest (each indicator, input, reference and the decision on its own) is still checked,
and the errors come out sorted by line. A YAML syntax error stops the file; it is one line
in the file's terms ("bad indentation: ...") rather than PyYAML's parser states.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple, get_args

import yaml
from pydantic import BaseModel, ValidationError

from dxgraph.errors import ConfigError
from dxgraph.workflows.rules import RuleError, compile_rule
from dxgraph.workflows.schema import Decision, Indicator, InputSlot, Reference, Step, Workflow
from dxgraph.yamlfile import line_for, lines_and_duplicates, load_checked, yaml_error

__all__ = [
    "WorkflowErrors",
    "load_workflow",
    "parse_workflow",
    "builtin_dir",
    "list_workflows",
    "find_workflow",
    "step_outputs",
    "ordered_steps",
    "line_map",
]

_MAX_BYTES = 1_000_000


class WorkflowErrors(ConfigError):
    """All the problems found in one workflow file, each as ``FILE:LINE: message``."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def builtin_dir() -> Path:
    return Path(__file__).parent / "builtin"


def line_map(text: str, file: str) -> dict[tuple, int]:
    """Map each key/item path to its 1-based line; raise on duplicate keys."""
    lines, duplicates = lines_and_duplicates(text, file)
    if duplicates:
        raise WorkflowErrors(duplicates)
    return lines


def _pydantic_message(err: dict[str, Any]) -> str:
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "tagged-union")))]
    field = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        return f"unknown key {str(loc[-1])!r} at {'.'.join(str(p) for p in loc[:-1]) or 'top level'}{hint}"
    if kind == "missing":
        return f"missing required key {field!r}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{field}: {msg}"


def _model_at(loc: Iterable[Any]) -> type[BaseModel] | None:
    """The schema model a pydantic location points into (list indexes skipped)."""
    model: type[BaseModel] | None = Workflow
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = next(iter(_models_in(field.annotation)), None) if field else None
    return model


def _models_in(annotation: Any) -> Iterable[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


def step_outputs(step: Step, tool_outputs: tuple[str, ...]) -> dict[str, str]:
    """Map each tool output to the local name the step binds it to."""
    out = step.outputs
    if out is None:
        return {name: name for name in tool_outputs}
    if isinstance(out, str):
        return {tool_outputs[0]: out}
    if isinstance(out, list):
        return dict(zip(tool_outputs, out))
    return dict(out)


def ordered_steps(ind: Indicator, input_names: set[str], outputs_of) -> list[int]:
    """Topological order of an indicator's steps; raises ValueError naming a cycle."""
    producers: dict[str, int] = {}
    for i, step in enumerate(ind.steps):
        for name in outputs_of(step).values():
            producers[name] = i
    deps = {i: {producers[r] for r in s.inputs.values() if r in producers and r not in input_names}
            for i, s in enumerate(ind.steps)}
    order: list[int] = []
    state: dict[int, int] = {}

    def visit(i: int, chain: list[int]) -> None:
        if state.get(i) == 2:
            return
        if state.get(i) == 1:
            cyc = chain[chain.index(i):] + [i]
            raise ValueError("steps form a cycle: " + " -> ".join(f"{ind.steps[j].tool} (step {j + 1})" for j in cyc))
        state[i] = 1
        for d in sorted(deps[i]):
            visit(d, chain + [i])
        state[i] = 2
        order.append(i)

    for i in range(len(ind.steps)):
        visit(i, [])
    return order


class _Parts(NamedTuple):
    """The parts of a workflow that passed pydantic: the checks that can still run use them.

    ``None`` means unknown (that part has schema errors of its own): checks that need it
    are skipped rather than report errors that fixing the schema error would remove.
    """

    ref_ids: set[str] | None
    input_names: set[str] | None
    indicators: list[tuple[int, Indicator]]
    n_indicators: int
    decision: Decision | None


def _parts_of(wf: Workflow) -> _Parts:
    return _Parts({r.id for r in wf.references}, {s.name for s in wf.inputs}, list(enumerate(wf.indicators)),
                  len(wf.indicators), wf.decision)


def _valid_parts(data: dict[str, Any]) -> _Parts:
    """Validate each reference, input, indicator and the decision on its own; keep what passes."""

    def items(key: str, model: type[BaseModel]) -> tuple[list[tuple[int, Any]], bool]:
        raw = data.get(key, [])
        if not isinstance(raw, list):
            return [], False
        good = []
        for i, item in enumerate(raw):
            try:
                good.append((i, model.model_validate(item)))
            except ValidationError:
                pass
        return good, len(good) == len(raw)

    refs, refs_ok = items("references", Reference)
    inputs, inputs_ok = items("inputs", InputSlot)
    indicators, _ = items("indicators", Indicator)
    try:
        decision = Decision.model_validate(data.get("decision"))
    except ValidationError:
        decision = None
    raw = data.get("indicators")
    return _Parts({r.id for _, r in refs} if refs_ok else None,
                  {s.name for _, s in inputs} if inputs_ok and inputs else None,
                  indicators, len(raw) if isinstance(raw, list) else 0, decision)


def _semantic_errors(parts: _Parts, lines: dict[tuple, int], file: str) -> list[ConfigError]:
    from dxgraph.tools.registry import registry

    tools = registry()
    errors: list[ConfigError] = []

    def err(loc: tuple, msg: str) -> None:
        errors.append(ConfigError(msg, file=file, line=line_for(lines, loc)))

    ref_ids, input_names = parts.ref_ids, parts.input_names
    for i, ind in parts.indicators:
        base = ("indicators", i)
        for r in ind.references:
            if ref_ids is not None and r not in ref_ids:
                err(base + ("references",), f"indicator {ind.id!r} cites reference {r!r}, which is not in 'references'")
        bad_tool = False
        for j, step in enumerate(ind.steps):
            spec = tools.get(step.tool)
            if spec is None:
                bad_tool = True
                close = difflib.get_close_matches(step.tool, list(tools), n=3, cutoff=0.75)
                hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
                err(base + ("steps", j, "tool"), f"unknown tool {step.tool!r}{hint}; see 'dxgraph workflows tools'")
                continue
            for pname in step.inputs:
                if pname not in spec.params or spec.params[pname].kind == "context":
                    err(base + ("steps", j, "inputs", pname), f"tool {step.tool!r} has no input {pname!r}; it takes {sorted(p for p in spec.params if spec.params[p].kind != 'context')}")
            for aname, value in step.args.items():
                p = spec.params.get(aname)
                if p is not None and p.kind == "input":
                    err(base + ("steps", j, "args", aname), f"{aname!r} of tool {step.tool!r} is data, not a setting: bind it under 'inputs'")
                    continue
                problem = spec.check_arg(aname, value)
                if problem:
                    err(base + ("steps", j, "args", aname), problem)
            for pname, p in spec.params.items():
                if p.required and p.kind != "context" and pname not in step.inputs and pname not in step.args:
                    err(base + ("steps", j), f"tool {step.tool!r} needs {pname!r}: give it under 'inputs' or 'args'")
            if isinstance(step.outputs, list) and len(step.outputs) > len(spec.outputs):
                err(base + ("steps", j, "outputs"), f"tool {step.tool!r} returns {len(spec.outputs)} outputs {list(spec.outputs)}, not {len(step.outputs)}")
            if isinstance(step.outputs, dict):
                for o in step.outputs:
                    if o not in spec.outputs:
                        err(base + ("steps", j, "outputs", o), f"tool {step.tool!r} has no output {o!r}; its outputs are {list(spec.outputs)}")
        if bad_tool:
            continue

        def outs(step: Step) -> dict[str, str]:
            return step_outputs(step, tools[step.tool].outputs)

        produced = {name for s in ind.steps for name in outs(s).values()}
        if input_names is not None:  # unknown while 'inputs' has schema errors
            for j, step in enumerate(ind.steps):
                for pname, ref in step.inputs.items():
                    if ref not in input_names and ref not in produced:
                        err(base + ("steps", j, "inputs", pname), f"input {ref!r} of step {step.tool!r} is neither a workflow input {sorted(input_names)} nor an output of a step of indicator {ind.id!r}")
            try:
                ordered_steps(ind, input_names, outs)
            except ValueError as exc:
                err(base + ("steps",), f"indicator {ind.id!r}: {exc}")
        value = ind.value or next(iter(outs(ind.steps[-1]).values()), None)
        if value not in produced:
            err(base + ("value",), f"indicator {ind.id!r}: value {value!r} is not an output of its steps")
        try:
            rule = compile_rule(ind.rule)
            missing = sorted(rule.names - produced - (input_names or set()))
            if missing and input_names is not None:  # with 'inputs' unknown, a name may be one of them
                err(base + ("rule",), f"rule {ind.rule!r} uses {', '.join(map(repr, missing))}, not produced by the steps of {ind.id!r} (available: {sorted(produced)})")
        except RuleError as exc:
            err(base + ("rule",), exc.message)
        for name in ind.overlay:
            if name not in produced:
                err(base + ("overlay",), f"overlay {name!r} is not an output of the steps of {ind.id!r}")
    d = parts.decision
    if d is not None and d.method == "k_of_n" and d.k and d.k > parts.n_indicators:
        err(("decision", "k"), f"k={d.k} is more than the {parts.n_indicators} indicators")
    return errors


def _repeat_and_number_errors(data: dict[str, Any], wf: Workflow | None, lines: dict[tuple, int],
                              file: str) -> list[ConfigError]:
    """Two inputs with one name, two references with one id (a step or a citation would bind
    to either), and numbers that are not finite (``.inf``, ``1e400``: a weight of infinity
    turns every score into NaN; pydantic reads the string ``1e400`` as one)."""
    errors: list[ConfigError] = []
    for key, field in (("inputs", "name"), ("references", "id")):
        seen: dict[Any, int] = {}
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            value = item.get(field) if isinstance(item, dict) else None
            if value is None or not isinstance(value, (str, int, float, bool)):
                continue
            line = line_for(lines, (key, i, field))
            if value in seen:
                errors.append(ConfigError(f"{key} {field} {value!r} appears twice (first on line {seen[value]})",
                                          file=file, line=line))
            seen.setdefault(value, line)

    reported: set[tuple] = set()

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, float) and not math.isfinite(node) and path not in reported:
            reported.add(path)
            errors.append(ConfigError(f"{'.'.join(map(str, path))} is {node!r}: give a finite number",
                                      file=file, line=line_for(lines, path)))
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))

    walk(data, ())
    if wf is not None:
        walk(wf.model_dump(), ())
    return errors


def parse_workflow(text: str, file: str = "<string>") -> Workflow:
    """Parse and fully check workflow text; raise WorkflowErrors listing every problem."""
    try:
        data, lines, errors = load_checked(text, file)
    except yaml.YAMLError as exc:
        raise WorkflowErrors([yaml_error(exc, text, file)]) from None
    except ConfigError as exc:
        raise WorkflowErrors([exc]) from None
    if not isinstance(data, dict):
        raise WorkflowErrors([ConfigError("a workflow file must be a mapping with keys id, name, inputs, indicators, decision...", file=file, line=1)])
    wf: Workflow | None = None
    try:
        wf = Workflow.model_validate(data)
        parts = _parts_of(wf)
    except ValidationError as exc:
        errors += [ConfigError(_pydantic_message(e), file=file, line=line_for(lines, e["loc"])) for e in exc.errors()]
        parts = _valid_parts(data)
    errors += _semantic_errors(parts, lines, file) + _repeat_and_number_errors(data, wf, lines, file)
    if errors or wf is None:
        raise WorkflowErrors(sorted(errors, key=lambda e: e.line or 0))
    return wf


def load_workflow(path: str | Path) -> Workflow:
    """Read a workflow file (YAML); raise WorkflowErrors with file:line for every problem."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"workflow file {str(path)!r} does not exist")
    if p.stat().st_size > _MAX_BYTES:
        raise ConfigError(f"workflow file {str(path)!r} is larger than 1 MB; is it really a workflow?")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"workflow file {str(path)!r} is not UTF-8 text") from None
    return parse_workflow(text, file=str(path))


def list_workflows() -> list[tuple[Workflow, Path]]:
    """The built-in workflows, sorted by id."""
    found = []
    for path in sorted(builtin_dir().glob("*.yaml")):
        found.append((load_workflow(path), path))
    return sorted(found, key=lambda t: t[0].id)


def find_workflow(id_or_path: str) -> tuple[Workflow, Path]:
    """A built-in workflow by id, or a workflow file by path."""
    p = Path(id_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        return load_workflow(p), p
    candidate = builtin_dir() / f"{id_or_path}.yaml"
    if candidate.is_file():
        return load_workflow(candidate), candidate
    ids = sorted(x.stem for x in builtin_dir().glob("*.yaml"))
    raise ConfigError(f"no workflow {id_or_path!r}: built-in workflows are {', '.join(ids)}; or give a path to a .yaml file")
