"""Typed tool registry and a content-addressed result cache.

A tool is a plain typed function decorated with ``@tool``. Its schema comes from the type
hints and the Google-style docstring, never from a hand-written dict. Parameters are of two
kinds, told apart by their annotation:

* **inputs**: data produced by earlier steps or given to the workflow (``Image``, ``Mask``,
  ``str`` paths of kind ``path``...). In workflow YAML they are named under ``inputs:``.
* **args**: literal settings (int, float, str, bool, Literal). In YAML under ``args:``.

A parameter annotated ``ToolContext`` is injected by the runner (models, settings) and is
neither. Outputs are named: a tool returning a ``NamedTuple`` has one output per field,
any other tool has the outputs listed in ``@tool(outputs=...)`` (default ``("value",)``).

The cache key of a call is a hash of the tool name, its version, the digests of its inputs
and its args. Output digests are derived from the key, so a chain of cached steps is
resolved without loading any intermediate array (this is what makes a repeat run cost
nothing). Arrays are stored as ``.npz``, scalars as JSON; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import threading
import typing
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import numpy as np

from dxgraph.errors import ConfigError
from dxgraph.tools.data import Image, Mask, array_digest

__all__ = [
    "ToolContext",
    "ToolSpec",
    "ParamSpec",
    "ToolCache",
    "Ref",
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
):
    """Register a typed function as a tool.

    Args:
        name: registry name (default: the function's name).
        version: bump it whenever results change; it is part of the cache key.
        outputs: output names for a tool that does not return a NamedTuple.
        units: unit of each numeric output (``{"vcdr": "ratio"}``), shown in evidence.
        cache: False for tools whose result must not be reused (a model's opinion).
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


# ---------------------------------------------------------------- cache

_MISSING = object()


class Ref:
    """A value in an indicator's namespace, known by digest, loaded only when needed."""

    __slots__ = ("digest", "_value", "_loader")

    def __init__(self, digest: str, value: Any = _MISSING, loader: Callable[[], Any] | None = None):
        self.digest = digest
        self._value = value
        self._loader = loader

    @property
    def loaded(self) -> bool:
        return self._value is not _MISSING

    @property
    def value(self) -> Any:
        if self._value is _MISSING:
            assert self._loader is not None
            self._value = self._loader()
        return self._value

    @classmethod
    def of(cls, value: Any) -> Ref:
        return cls(value_digest(value), value)


def file_digest(path: str | Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def value_digest(value: Any) -> str:
    if isinstance(value, (Image, Mask)):
        return value.digest
    if isinstance(value, np.ndarray):
        return array_digest(value)
    return hashlib.blake2b(json.dumps(value, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def call_key(spec: ToolSpec, input_digests: dict[str, str], args: dict[str, Any]) -> str:
    payload = json.dumps(
        {"tool": spec.name, "version": spec.version, "inputs": input_digests, "args": args},
        sort_keys=True,
        default=str,
    )
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str)) or (
        isinstance(v, np.generic) and v.ndim == 0
    )


class ToolCache:
    """Content-addressed store of tool outputs, on disk with an in-memory LRU in front.

    Args:
        root: directory for the on-disk cache; None keeps it in memory only.
        max_items: entries held in memory.
    """

    def __init__(self, root: str | Path | None = None, max_items: int = 256):
        self.root = Path(root) if root else None
        self._mem: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _dir(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / key

    def get(self, key: str) -> dict[str, Ref] | None:
        """Refs for the cached outputs of ``key``, or None. Scalars load at once, arrays lazily."""
        with self._lock:
            entry = self._mem.get(key)
            if entry is not None:
                self._mem.move_to_end(key)
                self.hits += 1
                return {n: Ref(f"{key}:{n}", v) for n, v in entry.items()}
        if self.root is None:
            self.misses += 1
            return None
        d = self._dir(key)
        index_path = d / "index.json"
        if not index_path.is_file():
            self.misses += 1
            return None
        try:
            index = json.loads(index_path.read_text())
        except (OSError, json.JSONDecodeError):
            self.misses += 1
            return None
        refs: dict[str, Ref] = {}
        for name, meta in index.items():
            if meta["kind"] == "scalar":
                refs[name] = Ref(f"{key}:{name}", meta["value"])
            else:
                refs[name] = Ref(f"{key}:{name}", loader=lambda p=d / f"{name}.npz", m=meta: _load_array(p, m))
        self.hits += 1
        return refs

    def put(self, key: str, outputs: dict[str, Any]) -> None:
        with self._lock:
            self._mem[key] = dict(outputs)
            self._mem.move_to_end(key)
            while len(self._mem) > self._max:
                self._mem.popitem(last=False)
        if self.root is None:
            return
        index: dict[str, Any] = {}
        d = self._dir(key)
        try:
            d.mkdir(parents=True, exist_ok=True)
            for name, value in outputs.items():
                if _is_scalar(value):
                    index[name] = {"kind": "scalar", "value": value.item() if isinstance(value, np.generic) else value}
                elif isinstance(value, (Image, Mask, np.ndarray)):
                    index[name] = _save_array(d / f"{name}.npz", value)
                else:
                    return  # not cacheable on disk; the in-memory copy still serves this process
            tmp = d / "index.json.tmp"
            tmp.write_text(json.dumps(index))
            tmp.replace(d / "index.json")  # atomic: a reader never sees half an entry
        except OSError:
            pass  # a cache that cannot be written is only slower, never wrong


def _save_array(path: Path, value: Any) -> dict[str, Any]:
    if isinstance(value, Image):
        np.savez(path, array=value.array)
        return {"kind": "image", "spacing": value.spacing, "source": value.source,
                "meta": {k: v for k, v in value.meta.items() if _is_scalar(v)}}
    if isinstance(value, Mask):
        np.savez_compressed(path, array=value.array)
        return {"kind": "mask", "spacing": value.spacing, "label": value.label}
    np.savez(path, array=value)
    return {"kind": "array"}


def _load_array(path: Path, meta: dict[str, Any]) -> Any:
    with np.load(path, allow_pickle=False) as data:
        array = data["array"]
    spacing = tuple(meta["spacing"]) if meta.get("spacing") else None
    if meta["kind"] == "image":
        return Image(array=array, spacing=spacing, source=meta.get("source", ""), meta=meta.get("meta", {}))
    if meta["kind"] == "mask":
        return Mask(array=array, spacing=spacing, label=meta.get("label", ""))
    return array
