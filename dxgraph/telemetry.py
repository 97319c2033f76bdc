"""OpenTelemetry tracing: a provider, span helpers, and the tracing wrapper for models.

Spans come from wrappers (``InstrumentedModel``, ``traced``) so the code they wrap stays
free of tracing calls. Message content goes into spans only when ``capture_content`` is on
(``DXGRAPH_TRACE_CONTENT=1``): patient words stay out of traces by default.

Model spans follow the OpenTelemetry GenAI semantic conventions
(``gen_ai.operation.name``, ``gen_ai.system``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``...).
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel

from dxgraph.errors import ConfigError

__all__ = [
    "setup_tracing",
    "get_tracer",
    "traced",
    "InstrumentedModel",
    "capture_content",
    "current_trace_id",
]

_state: dict[str, Any] = {"provider": None, "capture": False, "memory": None}
F = TypeVar("F", bound=Callable[..., Any])


def setup_tracing(
    exporter: str = "none", *, capture_content: bool = False, service_name: str = "dxgraph"
) -> InMemorySpanExporter | None:
    """Install a tracer provider for this process and return the in-memory exporter if asked.

    Args:
        exporter: ``none`` (spans are created but dropped), ``console``, ``otlp`` (needs the
            ``otlp`` extra and ``OTEL_EXPORTER_OTLP_ENDPOINT``) or ``memory`` (tests).
        capture_content: put prompts and replies into span attributes.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    memory = None
    if exporter == "console":
        # stderr: stdout carries the command's own output (``--json``), which spans would corrupt.
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    elif exporter == "memory":
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError(
                "tracing exporter 'otlp' needs the otlp extra: pip install 'dxgraph[otlp]'"
            ) from None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter != "none":
        raise ConfigError(f"unknown tracing exporter {exporter!r}; use none, console, otlp or memory")
    _state.update(provider=provider, capture=capture_content, memory=memory, tracer=None)
    return memory


def get_tracer() -> trace.Tracer:
    """The dxgraph tracer; the first call sets tracing up from the settings if nobody has.

    That is where ``DXGRAPH_TRACE`` / ``telemetry:`` in ``dxgraph.yaml`` take effect, so the
    CLI, the UI and library users get the configured exporter without calling
    ``setup_tracing`` themselves.
    """
    if _state["provider"] is None:
        from dxgraph.config import load_settings

        t = load_settings().telemetry
        setup_tracing(t.exporter, capture_content=t.capture_content, service_name=t.service_name)
    if _state.get("tracer") is None:  # the SDK's get_tracer costs ~80 us (it resets warning filters)
        _state["tracer"] = _state["provider"].get_tracer("dxgraph")
    return _state["tracer"]


def capture_content() -> bool:
    return bool(_state["capture"])


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _set_attrs(span: trace.Span, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        if value is not None:
            span.set_attribute(key, value)


def traced(name: str | None = None, **static_attrs: Any) -> Callable[[F], F]:
    """Wrap a function (sync or async) in a span named ``name`` (default: its qualname).

    An exception marks the span as an error and propagates unchanged.
    """

    def decorate(fn: F) -> F:
        span_name = name or fn.__qualname__

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                with get_tracer().start_as_current_span(span_name) as span:
                    _set_attrs(span, static_attrs)
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with get_tracer().start_as_current_span(span_name) as span:
                _set_attrs(span, static_attrs)
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


class InstrumentedModel:
    """Wraps any ChatModel so each call is a GenAI ``chat`` span; the model stays unaware."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.spec = inner.spec
        self.name = inner.name
        self.system_name = inner.system_name

    async def generate(self, messages, *, config=None, schema: type[BaseModel] | None = None):
        tracer = get_tracer()
        with tracer.start_as_current_span(f"chat {self.name}") as span:
            _set_attrs(
                span,
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": self.system_name,
                    "gen_ai.request.model": self.name,
                    "gen_ai.request.temperature": getattr(config, "temperature", None),
                    "gen_ai.request.max_tokens": getattr(config, "max_tokens", None),
                    "dxgraph.request.schema": schema.__name__ if schema else None,
                    "dxgraph.request.images": sum(len(m.images) for m in messages),
                },
            )
            if capture_content():
                span.set_attribute(
                    "gen_ai.input.messages",
                    json.dumps([{"role": m.role, "content": m.text} for m in messages]),
                )
            try:
                out = await self.inner.generate(messages, config=config, schema=schema)
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute("error.type", type(exc).__name__)
                raise
            _set_attrs(
                span,
                {
                    "gen_ai.response.model": out.model or None,
                    "gen_ai.usage.input_tokens": out.usage.input_tokens,
                    "gen_ai.usage.output_tokens": out.usage.output_tokens,
                    "gen_ai.response.finish_reasons": [out.finish_reason] if out.finish_reason else None,
                    "dxgraph.latency_ms": out.latency_ms,
                    "dxgraph.attempts": out.attempts,
                },
            )
            if capture_content():
                span.set_attribute("gen_ai.output.text", out.text)
            return out

    async def aclose(self) -> None:
        await self.inner.aclose()
