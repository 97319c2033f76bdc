"""JSON encoding of tool values for the remote tool protocol.

Arrays travel as base64 ``.npy`` bytes (``allow_pickle=False`` both ways), files by
content, scalars as themselves. Nothing is pickled, so a server never unpickles what a
client sent, nor the reverse.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np

from dxgraph.errors import InputError
from dxgraph.tools.data import Image, Mask

__all__ = ["encode_value", "decode_value", "encode_file"]


def _npy(array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _from_npy(text: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"array payload is not a valid .npy: {exc}") from None


def _plain(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) or v is None}


def encode_value(value: Any) -> dict[str, Any]:
    if isinstance(value, Image):
        return {"type": "image", "array": _npy(value.array), "spacing": value.spacing, "source": value.source,
                "meta": _plain(value.meta)}
    if isinstance(value, Mask):
        return {"type": "mask", "array": _npy(value.array), "spacing": value.spacing, "label": value.label}
    if isinstance(value, np.ndarray):
        return {"type": "array", "array": _npy(value)}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"type": "scalar", "value": value}
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
        return {"type": "scalar", "value": list(value)}
    raise TypeError(f"cannot send a {type(value).__name__} to a remote tool")


def encode_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    return {"type": "file", "name": p.name, "data": base64.b64encode(data).decode("ascii")}


def decode_value(payload: dict[str, Any], *, file_dir: Path | None = None) -> Any:
    if not isinstance(payload, dict) or "type" not in payload:
        raise InputError("each value must be an object with a 'type'")
    kind = payload["type"]
    spacing = tuple(payload["spacing"]) if payload.get("spacing") else None
    if kind == "image":
        return Image(array=_from_npy(payload["array"]), spacing=spacing, source=payload.get("source", ""),
                     meta=_plain(payload.get("meta") or {}))
    if kind == "mask":
        return Mask(array=_from_npy(payload["array"]), spacing=spacing, label=payload.get("label", ""))
    if kind == "array":
        return _from_npy(payload["array"])
    if kind == "scalar":
        return payload.get("value")
    if kind == "file":
        if file_dir is None:
            raise InputError("file values are accepted only as tool inputs")
        name = Path(str(payload.get("name") or "upload")).name  # never a path from the client
        target = file_dir / name
        target.write_bytes(base64.b64decode(payload["data"], validate=True))
        return str(target)
    raise InputError(f"unknown value type {kind!r}")
