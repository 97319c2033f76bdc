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


def _from_npy(text: Any) -> np.ndarray:
    """An array from base64 ``.npy`` bytes whose header must match the bytes that follow, so
    a 100-byte payload cannot declare a terabyte array and have it allocated."""
    if not isinstance(text, str):
        raise InputError("array payload must be a base64 string")
    try:
        buf = io.BytesIO(base64.b64decode(text, validate=True))
        version = np.lib.format.read_magic(buf)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f".npy version {version} is not accepted")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(buf)
        if dtype.hasobject:
            raise ValueError("object arrays are not accepted")
        if int(np.prod(shape, dtype=object)) * dtype.itemsize != len(buf.getbuffer()) - buf.tell():
            raise ValueError("the header's shape does not match the data")
        buf.seek(0)
        return np.load(buf, allow_pickle=False)
    except (ValueError, OSError, TypeError, EOFError) as exc:
        raise InputError(f"array payload is not a valid .npy: {str(exc)[:200]}") from None


def _spacing(payload: dict[str, Any]) -> tuple[float, ...] | None:
    value = payload.get("spacing")
    if not value:
        return None
    ok = isinstance(value, (list, tuple)) and len(value) <= 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0 for v in value)
    if not ok:
        raise InputError("spacing must be a list of at most 4 positive numbers (mm)")
    return tuple(float(v) for v in value)


def _text(payload: dict[str, Any], key: str, default: str = "") -> str:
    value = payload.get(key, default)
    if not isinstance(value, str):
        raise InputError(f"{key!r} must be a string")
    return value


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
    if kind == "image":
        meta = payload.get("meta") or {}
        if not isinstance(meta, dict):
            raise InputError("'meta' must be an object")
        return Image(array=_from_npy(payload.get("array")), spacing=_spacing(payload), source=_text(payload, "source"),
                     meta=_plain(meta))
    if kind == "mask":
        return Mask(array=_from_npy(payload.get("array")), spacing=_spacing(payload), label=_text(payload, "label"))
    if kind == "array":
        return _from_npy(payload.get("array"))
    if kind == "scalar":
        return payload.get("value")
    if kind == "file":
        if file_dir is None:
            raise InputError("file values are accepted only as tool inputs")
        name = Path(str(payload.get("name") or "upload")).name  # never a path from the client
        if name in ("", ".", "..") or "\x00" in name:
            name = "upload"
        try:
            data = base64.b64decode(_text(payload, "data"), validate=True)
        except ValueError:
            raise InputError("file data is not valid base64") from None
        target = file_dir / name[:200]
        target.write_bytes(data)
        return str(target)
    raise InputError(f"unknown value type {str(kind)[:50]!r}")
