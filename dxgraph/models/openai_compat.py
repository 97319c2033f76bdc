"""Chat Completions over httpx: vLLM first, and any OpenAI-compatible server.

One client speaks to ``vllm serve``, llama.cpp's server, Ollama, TGI or a hosted API. What
makes it fit for a benchmark of thousands of calls:

* retries by the one policy of ``dxgraph.models.retry`` (shared with the remote tool
  client): full-jitter exponential backoff on 429, 408, 409, 5xx, connect errors and
  timeouts, honouring ``Retry-After`` (capped);
* one concurrency limit per endpoint (``base_url``) shared by every instance in the event
  loop, so the doctor and the patient pointing at the same server do not double its load
  (STYLE.md rule 5);
* pooled connections shared per event loop unless a client is injected (STYLE.md
  rule 2: tests pass ``httpx.AsyncClient(transport=httpx.MockTransport(...))``);
* structured output through ``response_format`` with a JSON schema, validated with the
  pydantic model and repaired a bounded number of times.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel

from dxgraph.errors import ModelNotConfigured, ModelUnavailable
from dxgraph.models.base import GenerateConfig, ImagePart, Message, ModelOutput
from dxgraph.models.structured import (
    RawReply,
    generate_with_repairs,
    json_schema,
    response_format,
    shape_instruction,
    with_instruction,
)
from dxgraph.models.retry import RETRY_STATUSES, RetriesExhausted, Retry, RetryPolicy

__all__ = ["OpenAICompatModel", "RETRY_STATUSES"]

_NEXT_MODE = {"json_schema": "json_object", "json_object": "prompt"}
_POOL_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30)
# httpcore 1.0's pool does O(requests x connections) work on every request it queues or
# releases (encode/httpcore#1035): each scan asks every idle connection whether its socket
# is readable, through anyio's extra attributes (a getpeername() each). Spreading requests
# over several clients keeps each pool small: 8 shards restored the full rate at 128 in
# flight on an idle machine; 32 (about 4 connections a pool at 128 in flight) cut the
# client's CPU per call at 128 from 5.1 to 3.4 ms (benchmarks/orchestration_throughput.py).
_POOL_SHARDS = 32


@functools.lru_cache(maxsize=1)
def _tls_context():
    """One TLS context for every shard: httpx builds (and loads the CA bundle into) a new one
    per client otherwise, 120 ms each on the 2-core machine, 4 s for 32 shards."""
    return httpx.create_ssl_context()


@dataclass
class _LoopState:
    """What instances share inside one event loop (semaphores and clients are loop-bound)."""

    clients: list[httpx.AsyncClient] = field(default_factory=list)
    turn: itertools.count = field(default_factory=itertools.count)
    users: set[int] = field(default_factory=set)
    limiters: dict[str, asyncio.Semaphore] = field(default_factory=dict)


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()


def _loop_state() -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _LOOPS.get(loop)
    if state is None:
        state = _LOOPS[loop] = _LoopState()
    return state


def _server_message(response: httpx.Response) -> str:
    """The error text a server put in its body (OpenAI ``{"error": {"message": ...}}`` or raw)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body))
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:300]
        return str(err)[:300]
    return str(body)[:300]


def _rejects_format(payload: dict, response: httpx.Response) -> bool:
    """A 5xx that is really the server refusing our ``response_format`` (llama-cpp-python
    answers its own request-validation errors with 500): retrying the same body cannot help."""
    return "response_format" in payload and "response_format" in _server_message(response)


def _wire_message(message: Message) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, ImagePart):
            parts.append({"type": "image_url", "image_url": {"url": part.data_uri()}})
        else:
            parts.append({"type": "text", "text": part.text})
    return {"role": message.role, "content": parts}


class _StatusError(Exception):
    """A non-retryable HTTP status; carries the server's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class OpenAICompatModel:
    """A ``ChatModel`` for any OpenAI-compatible Chat Completions endpoint.

    Args:
        model: the model name the server knows (``Qwen/Qwen2.5-VL-7B-Instruct``).
        base_url: the API root, e.g. ``http://localhost:8000/v1``.
        api_key: bearer token; default ``DXGRAPH_API_KEY``, else ``OPENAI_API_KEY``, else none.
        http_client: an ``httpx.AsyncClient`` to use (tests inject a mock transport);
            by default a pooled set of clients per event loop is shared by all instances.
        max_concurrency: requests in flight to this ``base_url`` across all instances in the
            event loop. The first instance to call an endpoint sizes its limit.
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts).
        timeout_s: per-request timeout; ``GenerateConfig.timeout_s`` overrides it per call.
        backoff_base_s: the first retry waits up to this long; each retry doubles the cap.
        backoff_max_s: the cap on any single wait, ``Retry-After`` included.
        schema_repairs: extra calls allowed to fix an invalid structured reply.
        sleep: the backoff wait (default ``asyncio.sleep``); tests pass a recorder.
    """

    system_name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        max_concurrency: int = 16,
        max_retries: int = 4,
        timeout_s: float = 60.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        schema_repairs: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        if max_concurrency < 1 or max_retries < 0 or schema_repairs < 0 or timeout_s <= 0:
            raise ValueError("max_concurrency >= 1, max_retries >= 0, schema_repairs >= 0, timeout_s > 0")
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.spec = f"openai:{model}@{self.base_url}"
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.schema_repairs = schema_repairs
        self._sleep = sleep
        self._api_key = api_key or os.environ.get("DXGRAPH_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self._injected = http_client
        # How this server takes a schema: "json_schema" (OpenAI, vLLM), then "json_object"
        # with a schema (llama-cpp-python), then the prompt alone. Learnt from 400/422 replies.
        self._schema_mode = "json_schema"

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _client(self) -> httpx.AsyncClient:
        if self._injected is not None:
            return self._injected
        state = _loop_state()
        if not state.clients:
            state.clients = [httpx.AsyncClient(limits=_POOL_LIMITS, verify=_tls_context())
                             for _ in range(_POOL_SHARDS)]
        state.users.add(id(self))
        return state.clients[next(state.turn) % len(state.clients)]

    def _limiter(self) -> asyncio.Semaphore:
        limiters = _loop_state().limiters
        sem = limiters.get(self.base_url)
        if sem is None:
            sem = limiters[self.base_url] = asyncio.Semaphore(self.max_concurrency)
        return sem

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, base_s=self.backoff_base_s,
                           max_s=self.backoff_max_s, sleep=self._sleep)

    def _payload(self, messages: list[Message], config: GenerateConfig, schema: type[BaseModel] | None) -> dict:
        if schema is not None and self._schema_mode != "json_schema":
            # The shape, not the schema text: small models copy a schema's descriptions back.
            messages = with_instruction(messages, shape_instruction(schema))
        payload: dict[str, Any] = {"model": self.name, "messages": [_wire_message(m) for m in messages]}
        for key in ("temperature", "max_tokens", "seed", "stop"):
            value = getattr(config, key)
            if value is not None:
                payload[key] = value
        if schema is not None and self._schema_mode == "json_schema":
            payload["response_format"] = response_format(schema)
        elif schema is not None and self._schema_mode == "json_object":
            payload["response_format"] = {"type": "json_object", "schema": json_schema(schema)}
        return payload

    async def _post(self, payload: dict, timeout: float) -> tuple[dict, int]:
        """POST with retries; return the decoded body and the attempts it took."""
        client, sem = self._client(), self._limiter()

        async def attempt(number: int) -> tuple[dict, int]:
            try:
                async with sem:
                    response = await client.post(self.url, json=payload, headers=self._headers(), timeout=timeout)
            except httpx.UnsupportedProtocol as exc:
                raise ModelNotConfigured(f"model endpoint {self.url!r} is not an http(s) URL: {exc}") from exc
            except httpx.TransportError as exc:
                raise Retry(type(exc).__name__) from exc
            status = response.status_code
            if 200 <= status < 300:
                try:
                    body = response.json()
                    body["choices"][0]["message"]
                except (ValueError, KeyError, IndexError, TypeError):
                    raise Retry(f"HTTP {status} with a malformed body") from None
                return body, number
            if status in RETRY_STATUSES and not _rejects_format(payload, response):
                raise Retry.from_response(response)
            raise _StatusError(status, _server_message(response))

        try:
            return await self._retry_policy().call(attempt)
        except RetriesExhausted as exc:
            raise ModelUnavailable(
                f"model {self.name!r} at {self.url}: no answer after {exc.attempts} attempts; last error: {exc.reason}"
            ) from None

    async def _complete(self, messages: list[Message], config: GenerateConfig, schema, timeout: float):
        """One completion, stepping down the schema modes if the server rejects one."""
        while True:
            mode = self._schema_mode
            try:
                return await self._post(self._payload(messages, config, schema), timeout)
            except _StatusError as exc:
                text = exc.message.lower()
                if (
                    schema is not None
                    and exc.status in (400, 422, 500)
                    and mode != "prompt"
                    and ("response_format" in text or "json_schema" in text or "json_object" in text)
                ):
                    # Step down from the mode *this* request used: concurrent calls refused for
                    # the same mode must not each step once more (json_schema -> prompt).
                    if self._schema_mode == mode:
                        self._schema_mode = _NEXT_MODE[mode]
                    continue
                raise ModelUnavailable(
                    f"model {self.name!r} at {self.url}: HTTP {exc.status}: {exc.message}"
                ) from None

    async def generate(
        self,
        messages: list[Message],
        *,
        config: GenerateConfig | None = None,
        schema: type[BaseModel] | None = None,
    ) -> ModelOutput:
        """Send the conversation; with ``schema``, return the validated object in ``parsed``.

        Raises:
            ModelNotConfigured: ``base_url`` is not an http(s) URL.
            ModelUnavailable: the endpoint failed after its retries, or answered a
                non-retryable error.
            ModelOutputError: the structured reply stayed invalid after ``schema_repairs`` repairs.
        """
        config = config or GenerateConfig()
        timeout = config.timeout_s or self.timeout_s

        async def complete(conversation: list[Message], _call: int) -> RawReply:
            body, attempts = await self._complete(conversation, config, schema, timeout)
            choice = body["choices"][0]
            reported = body.get("usage") or {}
            return RawReply(text=choice["message"].get("content") or "",
                            input_tokens=int(reported.get("prompt_tokens") or 0),
                            output_tokens=int(reported.get("completion_tokens") or 0),
                            finish_reason=choice.get("finish_reason"), model=body.get("model") or self.name,
                            attempts=attempts)

        return await generate_with_repairs(list(messages), schema, self.schema_repairs, complete,
                                           who=f"model {self.name!r} at {self.url}")

    async def aclose(self) -> None:
        """Release the shared pooled client when its last user closes (an injected one is the caller's)."""
        if self._injected is not None:
            return
        loop = asyncio.get_running_loop()
        state = _LOOPS.get(loop)
        if state is None or id(self) not in state.users:
            return
        state.users.discard(id(self))
        if not state.users:
            clients, state.clients = state.clients, []
            for client in clients:
                await client.aclose()
