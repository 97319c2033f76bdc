"""Client side of the remote tool protocol: run chosen tools on a ``dxgraph serve tools`` host.

Configured in ``dxgraph.yaml``::

    tools:
      remote:
        url: http://gpu-host:8100
        tools: [segment_sam, segment_monai]     # or "*" for every tool
        token: ...        # or DXGRAPH_TOOLS_TOKEN; the server's bearer token

The local runner keeps the cache, the span and the in-flight de-duplication; only the
execution moves. Connect errors, timeouts, 429 and 5xx are retried by the same policy as
model calls (``dxgraph.models.retry``: jittered backoff, ``Retry-After`` obeyed up to a cap);
a 422 is the tool's own recoverable failure and becomes a ToolError at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from opentelemetry import propagate

from dxgraph.errors import ToolError
from dxgraph.models.retry import RETRY_STATUSES, RetriesExhausted, Retry, RetryPolicy
from dxgraph.tools.codec import decode_value, encode_file, encode_value
from dxgraph.tools.registry import FilePath, ToolSpec

__all__ = ["RemoteTools"]


class RemoteTools:
    """Calls tools on a remote dxgraph tool server.

    Args:
        url: base URL of the server (``http://host:port``).
        tools: names to run remotely, or ``"*"`` for all.
        http_client: an injected client (tests pass a MockTransport or a real one).
        timeout_s: per request; GPU models can be slow to load on first use.
        max_retries: retries on connect errors, timeouts and 5xx.
        token: the server's bearer token (``dxgraph serve tools`` prints or reads it).
    """

    #: The backoff wait; tests set it on an instance to record delays instead of sleeping.
    sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def __init__(self, url: str, tools: list[str] | str = "*", *, http_client: httpx.AsyncClient | None = None,
                 timeout_s: float = 120.0, max_retries: int = 3, backoff_s: float = 0.5,
                 token: str | None = None):
        self.token = token
        self.url = url.rstrip("/")
        self.tools = "*" if tools == "*" else set(tools)
        self._client = http_client
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    @classmethod
    def from_settings(cls, settings) -> RemoteTools | None:
        conf = (getattr(settings, "tools", None) or {}).get("remote")
        if not conf:
            return None
        return cls(conf["url"], conf.get("tools", "*"), timeout_s=float(conf.get("timeout_s", 120)),
                   max_retries=int(conf.get("max_retries", 3)),
                   token=conf.get("token") or os.environ.get("DXGRAPH_TOOLS_TOKEN") or None)

    def handles(self, name: str) -> bool:
        return self.tools == "*" or name in self.tools

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        return self._client

    async def call(self, spec: ToolSpec, kwargs: dict[str, Any]) -> dict[str, Any]:
        inputs, args = {}, {}
        for name, value in kwargs.items():
            p = spec.params[name]
            if p.kind == "context":
                continue
            if p.annotation is FilePath:
                inputs[name] = encode_file(value)
            elif p.kind == "input":
                inputs[name] = encode_value(value)
            else:
                args[name] = value
        headers: dict[str, str] = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        propagate.inject(headers)
        endpoint = f"{self.url}/v1/tools/{spec.name}/call"
        body = {"inputs": inputs, "args": args}
        try:
            return await RetryPolicy(max_retries=self.max_retries, base_s=self.backoff_s, sleep=self.sleep).call(
                lambda attempt: self._attempt(spec.name, endpoint, body, headers, attempt))
        except RetriesExhausted as exc:
            raise ToolError(f"remote tool {spec.name!r} at {endpoint} failed after {exc.attempts} attempts "
                            f"({exc.reason})") from None

    async def _attempt(self, name: str, endpoint: str, body: dict, headers: dict[str, str],
                       attempt: int) -> dict[str, Any]:
        """One POST: the outputs, ``Retry`` for what may pass, ToolError for what will not."""
        try:
            resp = await self._http().post(endpoint, json=body, headers=headers, timeout=self.timeout_s)
        except httpx.TransportError as exc:
            raise Retry(type(exc).__name__) from exc
        if resp.status_code == 200:
            return {k: decode_value(v) for k, v in resp.json()["outputs"].items()}
        if resp.status_code == 422:
            raise ToolError(resp.json().get("error", resp.text))
        if resp.status_code in (401, 403):
            raise ToolError(self._auth_message(resp.status_code, "Authorization" in headers))
        if resp.status_code == 404:
            raise ToolError(f"remote tool server {self.url} has no tool {name!r}")
        if resp.status_code in RETRY_STATUSES:
            raise Retry.from_response(resp)
        raise ToolError(f"remote tool {name!r} at {endpoint} failed after {attempt} attempts "
                        f"(HTTP {resp.status_code})")

    def _auth_message(self, status: int, sent: bool) -> str:
        """What to do about a refused token, in one line (the token itself is never shown)."""
        what = ("the bearer token sent was not accepted" if sent
                else "it needs a bearer token and none was sent")
        return (f"remote tool server {self.url} refused the call (HTTP {status}): {what}; set "
                f"DXGRAPH_TOOLS_TOKEN (or tools.remote.token in dxgraph.yaml) to the token the server "
                f"was started with (`dxgraph serve tools` prints it, or uses DXGRAPH_TOOLS_TOKEN)")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
