"""``dxgraph serve tools``: the tool registry over HTTP, for GPU tools on a GPU host.

Endpoints: ``GET /v1/tools`` (schemas), ``GET /v1/tools/{name}``, ``POST
/v1/tools/{name}/call`` with ``{"inputs": {...}, "args": {...}}`` (values encoded by
``codec.py``) returning ``{"outputs": {...}, "version", "seconds"}``. The caller's trace
context (W3C ``traceparent``) is continued, so a remote tool call is one trace.
Recoverable tool failures answer 422 with the message; unknown tools 404.

Security model (a server that reads medical images is a target): every endpoint but
``/v1/health`` needs ``Authorization: Bearer TOKEN`` when a token is set; a file input is
either uploaded with the request or a path that resolves, after symlinks, under
``data_root`` (no root: uploads only), and a refused path and a missing one get the same
answer so the server reveals nothing about its disk; a malformed request is a 4xx with a
JSON ``{"error", "type"}``, never a 500 with a traceback; bodies over ``max_body_bytes``
are refused while they are read, not after.
"""

# No "from __future__ import annotations": FastAPI resolves handler annotations at runtime.

import asyncio
import hmac
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from dxgraph.errors import DxGraphError, InputError, ToolError

__all__ = ["create_app", "MAX_REQUEST_BYTES", "resolve_under_root"]

# A 100-megapixel 16-bit image as base64 is ~270 MB; the images a workflow sends are PNG,
# JPEG or DICOM files (a few MB), so 32 MB fits them with room and bounds a hostile body.
MAX_REQUEST_BYTES = 32 * 1024 * 1024
_NOT_ALLOWED = "is not an allowed file on this server (not under its data root, or not found)"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def resolve_under_root(value: Any, root: Path | None) -> str:
    """The real path of ``value`` if it names an existing file under ``root``, else InputError.

    Symlinks are resolved before the check, ``~`` is not expanded, and a path outside the
    root and a missing file get one message, so a caller cannot probe the host's files.
    """
    if root is None or not isinstance(value, str) or not value or "\x00" in value:
        raise InputError(f"file input {str(value)[:200]!r} {_NOT_ALLOWED}")
    real_root = root.resolve()
    candidate = Path(value)
    try:
        real = (candidate if candidate.is_absolute() else real_root / candidate).resolve(strict=True)
        ok = real.is_relative_to(real_root) and real.is_file()
    except (OSError, RuntimeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"file input {value[:200]!r} {_NOT_ALLOWED}")
    return str(real)


def _error(status: int, message: str, kind: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "type": kind}, status_code=status)


async def _read_json(request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _BadRequest(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise _BadRequest(413, f"request of {declared} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BadRequest(413, f"request is over the {limit}-byte limit")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except RecursionError:
        raise _BadRequest(400, "request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequest(400, f"request body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise _BadRequest(400, 'request body must be a JSON object {"inputs": {...}, "args": {...}}')
    for key in ("inputs", "args"):
        if not isinstance(body.get(key) or {}, dict):
            raise _BadRequest(400, f"{key!r} must be a JSON object")
    unknown = sorted(set(body) - {"inputs", "args"})
    if unknown:
        raise _BadRequest(400, f"unknown request field {unknown[0]!r}")
    return body


def _bind_arguments(spec, body: dict[str, Any], tmp: Path, data_root: Path | None, ctx) -> dict[str, Any]:
    """Decode and check the request's values against the tool's parameters (InputError if wrong)."""
    from dxgraph.tools.codec import decode_value
    from dxgraph.tools.registry import FilePath

    kwargs: dict[str, Any] = {}
    for key, payload in (body.get("inputs") or {}).items():
        p = spec.params.get(key)
        if p is None or p.kind == "context":
            raise InputError(f"tool {spec.name!r} has no input {key!r}")
        if p.annotation is FilePath:
            if isinstance(payload, dict) and payload.get("type") == "file":
                kwargs[key] = decode_value(payload, file_dir=tmp)
            elif isinstance(payload, dict) and payload.get("type") == "scalar":
                kwargs[key] = resolve_under_root(payload.get("value"), data_root)
            else:
                raise InputError(f"input {key!r} of tool {spec.name!r} must be an uploaded file")
        else:
            value = decode_value(payload)
            if isinstance(p.annotation, type) and p.annotation is not object and not isinstance(value, p.annotation):
                raise InputError(f"input {key!r} of tool {spec.name!r} must be a {p.annotation.__name__}")
            kwargs[key] = value
    for key, value in (body.get("args") or {}).items():
        if key in kwargs:
            raise InputError(f"{key!r} is given both as an input and as an arg")
        problem = spec.check_arg(key, value)
        if problem:
            raise InputError(problem)
        kwargs[key] = value
    missing = sorted(k for k, p in spec.params.items() if p.required and p.kind != "context" and k not in kwargs)
    if missing:
        raise InputError(f"tool {spec.name!r} needs {missing[0]!r}")
    for pname, p in spec.params.items():
        if p.kind == "context":
            kwargs[pname] = ctx
    return kwargs


def create_app(context=None, *, token: str | None = None, data_root: str | Path | None = None,
               max_body_bytes: int = MAX_REQUEST_BYTES):
    """The FastAPI app serving every registered tool (built-ins and any imported plugins).

    Args:
        context: the ToolContext given to tools that ask for one.
        token: the bearer token every request but ``/v1/health`` must carry; None serves
            without authentication (the CLI allows that only on a loopback address).
        data_root: the folder file inputs may name by path; None accepts uploads only.
        max_body_bytes: the largest request body read.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from opentelemetry import propagate
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from dxgraph.telemetry import get_tracer
    from dxgraph.tools.codec import encode_value
    from dxgraph.tools.registry import ToolContext, registry
    from dxgraph.tools.runner import _as_outputs

    ctx = context or ToolContext()
    root = Path(data_root).resolve() if data_root else None
    expected = f"Bearer {token}".encode() if token else None
    app = FastAPI(title="dxgraph tools", version="1", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if expected is not None and request.url.path != "/v1/health":
            given = request.headers.get("authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                resp = _error(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)", "Unauthorized")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return resp
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), "HTTPError")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return _error(400, "malformed request", "RequestValidationError")

    @app.get("/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/tools")
    async def list_tools() -> list[dict[str, Any]]:
        return [s.json_schema() for s in sorted(registry().values(), key=lambda s: s.name)]

    @app.get("/v1/tools/{name}")
    async def get_tool(name: str):
        spec = registry().get(name)
        if spec is None:
            return _error(404, f"unknown tool {name[:100]!r}", "NotFound")
        return spec.json_schema()

    @app.post("/v1/tools/{name}/call")
    async def call(name: str, request: Request):
        spec = registry().get(name)
        if spec is None:
            return _error(404, f"unknown tool {name[:100]!r}", "NotFound")
        try:
            body = await _read_json(request, max_body_bytes)
        except _BadRequest as exc:
            return _error(exc.status, str(exc), "BadRequest")
        parent = propagate.extract(dict(request.headers))
        with get_tracer().start_as_current_span(f"remote tool {name}", context=parent) as span:
            span.set_attribute("dxgraph.tool.name", name)
            start = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="dxgraph-tool-") as tmp:
                try:
                    kwargs = _bind_arguments(spec, body, Path(tmp), root, ctx)
                except (InputError, DxGraphError) as exc:
                    span.set_attribute("error.type", type(exc).__name__)
                    return _error(400, str(exc), type(exc).__name__)
                try:
                    if spec.is_async:
                        result = await spec.fn(**kwargs)
                    else:
                        result = await asyncio.to_thread(spec.fn, **kwargs)
                    outputs = _as_outputs(spec, result)
                except (ToolError, InputError, DxGraphError) as exc:
                    span.set_attribute("error.type", type(exc).__name__)
                    return _error(422, str(exc), type(exc).__name__)
            return {"outputs": {k: encode_value(v) for k, v in outputs.items()}, "version": spec.version,
                    "seconds": time.perf_counter() - start}

    return app
