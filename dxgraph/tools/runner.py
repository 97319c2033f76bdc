"""Runs tool calls: cache lookup, in-flight de-duplication, threads for CPU work, spans.

Indicators fan out in parallel, and two of them often start with the same step (the
glaucoma workflow segments the disc once for the vCDR and once for the rim). The runner
keys each call by content; an identical call already running is awaited, not repeated,
and a finished one comes from the cache.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from dxgraph.errors import DxGraphError, InputError, ModelError, ToolError
from dxgraph.telemetry import get_tracer
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.cache import Ref, ToolCache, call_key
from dxgraph.tools.registry import ToolContext, ToolSpec
from dxgraph.types import ToolCallRecord

__all__ = ["ToolRunner", "summarise"]


def summarise(value: Any) -> Any:
    """A scalar stand-in for a value, fit for evidence tables and the store."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, np.generic):
        return summarise(value.item())
    if isinstance(value, Mask):
        return f"mask {int(value.array.sum())} px"
    if isinstance(value, Image):
        return f"image {'x'.join(map(str, value.array.shape))}"
    if isinstance(value, np.ndarray):
        return f"array {'x'.join(map(str, value.shape))}"
    return type(value).__name__


def _as_outputs(spec: ToolSpec, result: Any) -> dict[str, Any]:
    if isinstance(result, tuple) and hasattr(result, "_fields"):
        return dict(zip(result._fields, result))
    if len(spec.outputs) > 1:
        if isinstance(result, dict):
            return {k: result[k] for k in spec.outputs}
        if isinstance(result, tuple) and len(result) == len(spec.outputs):
            return dict(zip(spec.outputs, result))
        raise TypeError(f"tool {spec.name!r} must return {len(spec.outputs)} outputs {spec.outputs}")
    if isinstance(result, np.generic):
        result = result.item()
    return {spec.outputs[0]: result}


class ToolRunner:
    """Executes tools for one process (shared by all runs in it).

    Args:
        cache: the content-addressed cache (in memory only when None).
        context: what tools that ask for a ``ToolContext`` receive.
        strict: re-raise unexpected exceptions (tests), instead of recording them as the
            indicator's error so that one bad tool never ends a run.
        remote: a ``RemoteTools`` client; the tools it handles execute on its server.
    """

    def __init__(self, cache: ToolCache | None = None, context: ToolContext | None = None, *, strict: bool = False,
                 remote=None):
        self.cache = cache or ToolCache(None)
        self.remote = remote
        self.context = context or ToolContext()
        self.strict = strict
        self._inflight: dict[str, asyncio.Future] = {}

    async def call(self, spec: ToolSpec, inputs: dict[str, Ref], args: dict[str, Any]) -> tuple[dict[str, Ref], ToolCallRecord]:
        """Run one tool call; return output refs and its record. Raises ToolError on failure."""
        start = time.perf_counter()
        key = call_key(spec, {k: r.digest for k, r in inputs.items()}, args)
        with get_tracer().start_as_current_span(f"tool {spec.name}") as span:
            span.set_attribute("dxgraph.tool.name", spec.name)
            span.set_attribute("dxgraph.tool.version", spec.version)
            if spec.cache:
                hit = self.cache.get(key)
                if hit is not None:
                    span.set_attribute("dxgraph.tool.cached", True)
                    return hit, self._record(spec, args, hit, start, cached=True)
                pending = self._inflight.get(key)
                if pending is not None:
                    refs = await asyncio.shield(pending)
                    span.set_attribute("dxgraph.tool.shared", True)
                    return refs, self._record(spec, args, refs, start, cached=True)
            future: asyncio.Future = asyncio.get_running_loop().create_future()
            if spec.cache:
                self._inflight[key] = future
            try:
                outputs = await self._execute(spec, inputs, args)
                refs = {name: Ref(f"{key}:{name}", value) for name, value in outputs.items()}
                if spec.cache:
                    self.cache.put(key, outputs)
                future.set_result(refs)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters get it, nobody else must
                span.set_attribute("error.type", type(exc).__name__)
                raise
            finally:
                self._inflight.pop(key, None)
            span.set_attribute("dxgraph.tool.cached", False)
            return refs, self._record(spec, args, refs, start, cached=False)

    async def _execute(self, spec: ToolSpec, inputs: dict[str, Ref], args: dict[str, Any]) -> dict[str, Any]:
        remote = self.remote is not None and self.remote.handles(spec.name)
        if not remote and spec.precheck is not None and (reason := spec.precheck(self.context)):
            raise ToolError(reason)  # before ref.value: a call that cannot run loads nothing
        kwargs: dict[str, Any] = {name: ref.value for name, ref in inputs.items()}
        kwargs.update(args)
        for pname, p in spec.params.items():
            if p.kind == "context":
                kwargs[pname] = self.context
        try:
            if remote:
                return await self.remote.call(spec, kwargs)
            if spec.is_async:
                result = await spec.fn(**kwargs)
            else:
                result = await asyncio.to_thread(spec.fn, **kwargs)
            return _as_outputs(spec, result)
        except ToolError:
            raise
        except (InputError, ModelError) as exc:
            raise ToolError(str(exc)) from exc
        except DxGraphError as exc:
            raise ToolError(str(exc)) from exc
        except Exception as exc:
            if self.strict:
                raise
            raise ToolError(f"internal error in tool {spec.name!r}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _record(spec: ToolSpec, args: dict[str, Any], refs: dict[str, Ref], start: float, *, cached: bool) -> ToolCallRecord:
        outputs = {}
        for name, ref in refs.items():
            if ref.loaded:
                outputs[name] = summarise(ref.value)
        return ToolCallRecord(tool=spec.name, version=spec.version, seconds=round(time.perf_counter() - start, 6),
                              cached=cached, args=dict(args), outputs=outputs)
