"""Content-addressed cache of tool outputs.

The key of a call hashes the tool name, its version, the source of the tool's own code (its
module and the dxgraph modules it imports, transitively), the digests of its inputs and its
args: editing a segmenter invalidates its cached results even if nobody bumps the version,
while editing the tool server or another tool does not. Output digests are derived from the
key, so a chain of cached steps resolves without
loading any intermediate array. Arrays are stored as ``.npz`` and scalars as JSON;
nothing is pickled (``allow_pickle=False`` on every load).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dxgraph.tools.data import Image, Mask, array_digest

if TYPE_CHECKING:
    from dxgraph.tools.registry import ToolSpec

__all__ = ["Ref", "ToolCache", "call_key", "code_digest", "file_digest", "value_digest"]


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


def _dxgraph_imports(path: Path) -> list[Path]:
    """Source files of the ``dxgraph`` modules that ``path`` imports (top level or lazily)."""
    import ast
    import importlib.util

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    found = []
    for name in sorted(n for n in names if n == "dxgraph" or n.startswith("dxgraph.")):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            continue  # `from module import function`: the module itself is in the set too
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            found.append(Path(spec.origin))
    return found


def code_files(module_file: str | None) -> list[Path]:
    """The files whose source keys a tool's cache: its module and its dxgraph imports, transitively."""
    if not module_file:
        return []
    seen: set[Path] = set()
    todo = [Path(module_file).resolve()]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(p.resolve() for p in _dxgraph_imports(path))
    return sorted(seen)


@functools.lru_cache(maxsize=64)
def code_digest(module_file: str | None) -> str:
    """Digest of a tool's own code: its module and every dxgraph module it imports,
    transitively (read once per process).

    Editing a phantom generator, the HTTP server or another tool leaves this tool's cached
    results valid; editing the tool, a segmenter it calls or a helper it imports does not.
    """
    h = hashlib.blake2b(digest_size=16)
    for path in code_files(module_file):
        try:
            h.update(str(path.name).encode())
            h.update(path.read_bytes())
        except OSError:  # a zipped or frozen install: the version alone keys the cache
            continue
    return h.hexdigest()


def call_key(spec: "ToolSpec", input_digests: dict[str, str], args: dict[str, Any]) -> str:
    try:
        module_file = inspect.getsourcefile(spec.fn)
    except TypeError:  # a builtin or a proxy without a source file
        module_file = None
    payload = json.dumps(
        {"tool": spec.name, "version": spec.version, "code": code_digest(module_file),
         "inputs": input_digests, "args": args},
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
