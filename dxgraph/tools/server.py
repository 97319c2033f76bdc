"""``dxgraph serve tools``: the tool registry over HTTP, for GPU tools on a GPU host.

Endpoints: ``GET /v1/tools`` (schemas), ``GET /v1/tools/{name}``, ``POST
/v1/tools/{name}/call`` with ``{"inputs": {...}, "args": {...}}`` (values encoded by
``codec.py``) returning ``{"outputs": {...}, "version", "seconds"}``. The caller's trace
context (W3C ``traceparent``) is continued, so a remote tool call is one trace.
Recoverable tool failures answer 422 with the message; unknown tools 404.
"""

# No "from __future__ import annotations": FastAPI resolves handler annotations at runtime.

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from dxgraph.errors import DxGraphError, InputError, ToolError

__all__ = ["create_app", "MAX_REQUEST_BYTES"]

MAX_REQUEST_BYTES = 512 * 1024 * 1024


def create_app(context=None):
    """The FastAPI app serving every registered tool (built-ins and any imported plugins)."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse
    from opentelemetry import propagate

    from dxgraph.telemetry import get_tracer
    from dxgraph.tools.codec import decode_value, encode_value
    from dxgraph.tools.registry import ToolContext, registry
    from dxgraph.tools.runner import _as_outputs

    ctx = context or ToolContext()
    app = FastAPI(title="dxgraph tools", version="1")

    @app.get("/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/tools")
    async def list_tools() -> list[dict[str, Any]]:
        return [s.json_schema() for s in sorted(registry().values(), key=lambda s: s.name)]

    @app.get("/v1/tools/{name}")
    async def get_tool(name: str) -> dict[str, Any]:
        spec = registry().get(name)
        if spec is None:
            raise HTTPException(404, f"unknown tool {name!r}")
        return spec.json_schema()

    @app.post("/v1/tools/{name}/call")
    async def call(name: str, request: Request):
        spec = registry().get(name)
        if spec is None:
            raise HTTPException(404, f"unknown tool {name!r}")
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_REQUEST_BYTES:
            raise HTTPException(413, f"request of {size} bytes is over the {MAX_REQUEST_BYTES} limit")
        body = await request.json()
        parent = propagate.extract(dict(request.headers))
        with get_tracer().start_as_current_span(f"remote tool {name}", context=parent) as span:
            span.set_attribute("dxgraph.tool.name", name)
            start = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="dxgraph-tool-") as tmp:
                try:
                    kwargs = {k: decode_value(v, file_dir=Path(tmp)) for k, v in (body.get("inputs") or {}).items()}
                    kwargs.update(body.get("args") or {})
                    unknown = sorted(set(kwargs) - set(spec.params))
                    if unknown:
                        raise InputError(f"tool {name!r} has no parameter {unknown[0]!r}")
                    for pname, p in spec.params.items():
                        if p.kind == "context":
                            kwargs[pname] = ctx
                    if spec.is_async:
                        result = await spec.fn(**kwargs)
                    else:
                        result = await asyncio.to_thread(spec.fn, **kwargs)
                    outputs = _as_outputs(spec, result)
                except (ToolError, InputError, DxGraphError) as exc:
                    span.set_attribute("error.type", type(exc).__name__)
                    return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status_code=422)
            return {"outputs": {k: encode_value(v) for k, v in outputs.items()}, "version": spec.version,
                    "seconds": time.perf_counter() - start}

    return app
