"""The typed tool registry: ``@tool`` turns a typed function into a ``ToolSpec``.

A tool is a plain typed function decorated with ``@tool``. Its schema comes from the type
hints and the Google-style docstring, never from a hand-written dict. Parameters are of two
kinds, told apart by their annotation:

* **inputs**: data produced by earlier steps or given to the workflow (``Image``, ``Mask``,
  ``str`` paths of kind ``path``...). In workflow YAML they are named under ``inputs:``.
* **args**: literal settings (int, float, str, bool, Literal). In YAML under ``args:``.

A parameter annotated ``ToolContext`` is injected by the runner (models, settings) and is
neither. Outputs are named: a tool returning a ``NamedTuple`` has one output per field,
any other tool has the outputs listed in ``@tool(outputs=...)`` (default ``("value",)``).

Results are cached by ``dxgraph.tools.cache`` (content-addressed keys; see there) and calls
are run by ``dxgraph.tools.runner``.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from dxgraph.errors import ConfigError

__all__ = [
    "ToolContext",
    "ToolSpec",
    "ParamSpec",
    "tool",
    "registry",
    "get_tool",
    "FilePath",
]


class FilePath(str):
    """Annotation for a parameter that is a path to a file; its digest is the file's content."""


@dataclass
class ToolContext:
    """What the runner injects into tools that ask for it (never part of the cache key)."""

    models: dict[str, Any] = field(default_factory=dict)
    settings: Any = None
    options: dict[str, Any] = field(default_factory=dict)


_SCALARS = (int, float, str, bool)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    annotation: Any
    kind: Literal["input", "arg", "context"]
    required: bool
    default: Any = None
    doc: str = ""

    def json_type(self) -> dict[str, Any]:
        return _json_type(self.annotation)


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool: its function, version, typed parameters and named outputs."""

    name: str
    version: str
    fn: Callable[..., Any]
    description: str
    params: dict[str, ParamSpec]
    outputs: tuple[str, ...]
    units: dict[str, str]
    is_async: bool
    cache: bool
    # Called with the ToolContext before the inputs are loaded: a reason the tool cannot run
    # here (e.g. no VLM configured), so a hopeless call never reads a 24 MB image first.
    precheck: Callable[["ToolContext"], str | None] | None = None

    @property
    def inputs(self) -> dict[str, ParamSpec]:
        return {k: p for k, p in self.params.items() if p.kind == "input"}

    @property
    def args(self) -> dict[str, ParamSpec]:
        return {k: p for k, p in self.params.items() if p.kind == "arg"}

    def json_schema(self) -> dict[str, Any]:
        """A JSON schema of the tool (args and inputs), for listings and LLM planners."""
        props = {}
        for p in self.params.values():
            if p.kind == "context":
                continue
            entry = p.json_type() | {"description": p.doc, "x-kind": p.kind}
            if not p.required:
                entry["default"] = p.default
            props[p.name] = entry
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": props,
                "required": [p.name for p in self.params.values() if p.required and p.kind != "context"],
            },
            "outputs": list(self.outputs),
            "units": dict(self.units),
        }

    def check_arg(self, name: str, value: Any) -> str | None:
        """Return an error message if ``value`` does not fit arg ``name``, else None."""
        p = self.params.get(name)
        if p is None or p.kind != "arg":
            return f"tool {self.name!r} has no arg {name!r}; args are {sorted(self.args)}"
        return _check_value(p.annotation, value, f"arg {name!r} of tool {self.name!r}")


def _json_type(ann: Any) -> dict[str, Any]:
    origin = get_origin(ann)
    if origin is Literal:
        return {"enum": list(get_args(ann))}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [a for a in get_args(ann) if a is not type(None)]
        return _json_type(options[0]) if len(options) == 1 else {"anyOf": [_json_type(a) for a in options]}
    if ann is bool:
        return {"type": "boolean"}
    if ann is int:
        return {"type": "integer"}
    if ann is float:
        return {"type": "number"}
    if ann in (str, FilePath):
        return {"type": "string"}
    if origin in (list, tuple):
        return {"type": "array"}
    return {"type": "object", "x-dxgraph-type": getattr(ann, "__name__", str(ann))}


def _check_value(ann: Any, value: Any, what: str) -> str | None:
    origin = get_origin(ann)
    if origin is Literal:
        choices = get_args(ann)
        return None if value in choices else f"{what} must be one of {list(choices)}, got {value!r}"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = get_args(ann)
        if value is None and type(None) in options:
            return None
        errors = [_check_value(a, value, what) for a in options if a is not type(None)]
        return None if any(e is None for e in errors) else errors[0]
    if ann is bool:
        return None if isinstance(value, bool) else f"{what} must be true or false, got {value!r}"
    if ann is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{what} must be an integer, got {value!r}"
    if ann is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"{what} must be a number, got {value!r}"
    if ann is str:
        return None if isinstance(value, str) else f"{what} must be a string, got {value!r}"
    if origin in (list, tuple):
        return None if isinstance(value, list) else f"{what} must be a list, got {value!r}"
    return None


def _param_kind(ann: Any) -> Literal["input", "arg", "context"]:
    if ann is ToolContext:
        return "context"
    if ann is FilePath:
        return "input"
    origin = get_origin(ann)
    if origin is Literal or ann in _SCALARS:
        return "arg"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [a for a in get_args(ann) if a is not type(None)]
        return "input" if any(_param_kind(a) == "input" for a in options) else "arg"
    if origin in (list, tuple) and all(a in _SCALARS for a in get_args(ann)):
        return "arg"
    return "input"


def _docstring_parts(fn: Callable) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(fn) or ""
    summary = doc.split("\n\n")[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    match = re.search(r"^Args:\n((?:[ \t]+.*\n?)+)", doc, re.M)
    if match:
        current = None
        for line in match.group(1).splitlines():
            m = re.match(r"^\s{2,4}(\w+)(?: \([^)]*\))?:\s*(.*)$", line)
            if m:
                current = m.group(1)
                params[current] = m.group(2).strip()
            elif current and line.strip():
                params[current] += " " + line.strip()
    return summary, params


_REGISTRY: dict[str, ToolSpec] = {}


def tool(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    version: str = "1",
    outputs: tuple[str, ...] | None = None,
    units: dict[str, str] | None = None,
    cache: bool = True,
    precheck: Callable[["ToolContext"], str | None] | None = None,
):
    """Register a typed function as a tool.

    Args:
        name: registry name (default: the function's name).
        version: bump it whenever results change; it is part of the cache key.
        outputs: output names for a tool that does not return a NamedTuple.
        units: unit of each numeric output (``{"vcdr": "ratio"}``), shown in evidence.
        cache: False for tools whose result must not be reused (a model's opinion).
        precheck: given the ``ToolContext``, a reason the tool cannot run (or None); the
            runner calls it before loading any input and fails the call with that reason.
    """

    def register(f: Callable) -> Callable:
        hints = typing.get_type_hints(f)
        summary, docs = _docstring_parts(f)
        params = {}
        for pname, p in inspect.signature(f).parameters.items():
            ann = hints.get(pname, Any)
            params[pname] = ParamSpec(
                name=pname,
                annotation=ann,
                kind=_param_kind(ann),
                required=p.default is inspect.Parameter.empty,
                default=None if p.default is inspect.Parameter.empty else p.default,
                doc=docs.get(pname, ""),
            )
        ret = hints.get("return")
        if outputs is not None:
            names = tuple(outputs)
        elif isinstance(ret, type) and issubclass(ret, tuple) and hasattr(ret, "_fields"):
            names = tuple(ret._fields)
        else:
            names = ("value",)
        spec = ToolSpec(
            name=name or f.__name__,
            version=str(version),
            fn=f,
            description=summary,
            params=params,
            outputs=names,
            units=dict(units or {}),
            is_async=inspect.iscoroutinefunction(f),
            cache=cache,
            precheck=precheck,
        )
        if spec.name in _REGISTRY and _REGISTRY[spec.name].fn is not f:
            existing = _REGISTRY[spec.name].fn
            if (existing.__module__, existing.__qualname__) != (f.__module__, f.__qualname__):
                raise ValueError(f"tool {spec.name!r} registered twice")
        _REGISTRY[spec.name] = spec
        f.tool_spec = spec  # type: ignore[attr-defined]
        return f

    return register(fn) if fn is not None else register


def _load_builtin_tools() -> None:
    # Importing the modules runs their @tool decorators. Kept lazy so that importing
    # dxgraph.tools.registry does not pull torch or MONAI.
    import importlib

    for module in ("imaging", "segmentation", "measurement", "vlm", "learned"):
        try:
            importlib.import_module(f"dxgraph.tools.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"dxgraph.tools.{module}":
                raise


def registry() -> dict[str, ToolSpec]:
    """All registered tools by name (built-in modules are imported on first call)."""
    _load_builtin_tools()
    return dict(_REGISTRY)


def get_tool(name: str) -> ToolSpec:
    tools = registry()
    if name not in tools:
        raise ConfigError(f"unknown tool {name!r}; registered tools: {', '.join(sorted(tools))}")
    return tools[name]

