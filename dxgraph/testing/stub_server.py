"""A small, real OpenAI-compatible HTTP server for tests, benchmarks and demos.

It answers ``POST /v1/chat/completions`` and ``GET /v1/models`` over real sockets on
127.0.0.1, so the client under test goes through connection pooling, timeouts and HTTP
status handling exactly as it would against vLLM. Faults are injected at chosen rates
(500s, 429s with ``Retry-After``, hangs past the client timeout, truncated JSON bodies),
drawn from a seeded generator. A fixed delay per request turns it into a model server of
known speed for throughput benchmarks; one thread per connection sustains 128+ concurrent
requests.

    python -m dxgraph.testing.stub_server --port 8000 --delay 0.2
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel

__all__ = ["StubServer", "default_responder", "example_for_schema"]

Responder = Callable[[dict[str, Any]], str | dict | BaseModel]


def example_for_schema(schema: dict, root: dict | None = None) -> Any:
    """A small value valid for a simple JSON schema (objects, enums, refs, unions, arrays)."""
    root = root if root is not None else schema
    if "$ref" in schema:
        node: Any = root
        for key in schema["$ref"].lstrip("#/").split("/"):
            node = node[key]
        return example_for_schema(node, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [o for o in schema[union] if o.get("type") != "null"] or schema[union]
            return example_for_schema(options[0], root)
    if "allOf" in schema:
        return example_for_schema(schema["allOf"][0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_for_schema(sub, root) for name, sub in props.items()}
    if kind == "array":
        item = example_for_schema(schema.get("items", {"type": "string"}), root)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "string":
        return "x" * int(schema.get("minLength", 0)) if schema.get("minLength") else "stub"
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + (1 if "exclusiveMinimum" in schema else 0)
        high = schema.get("maximum")
        value = min(value, high) if high is not None else value
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    return None


def _request_schema(body: dict) -> dict | None:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    if fmt.get("type") == "json_object":
        return fmt.get("schema") or {"type": "object"}
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


def default_responder(body: dict) -> str | dict:
    """Deterministic replies: a schema-valid object when one is asked, else an echo."""
    schema = _request_schema(body)
    if schema is not None:
        return example_for_schema(schema)
    messages = body.get("messages") or [{}]
    return f"stub reply to: {_text_of(messages[-1].get('content'))[:200]}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512  # the listen backlog: 128 clients connecting at once must not be dropped
    stub: StubServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool is exercised
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write, and without Nagle: on a kept-alive
        # connection, Nagle plus the client's delayed ACK stalls every reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, {"object": "list", "data": [
                {"id": self.server.stub.model, "object": "model", "owned_by": "dxgraph-stub"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route GET {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route POST {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        self.server.stub._serve_completion(self, body)


class StubServer:
    """An OpenAI-compatible server in a background thread, for tests and benchmarks.

    Args:
        responder: ``request body -> reply`` (text, a dict sent as JSON, or a pydantic
            object); default :func:`default_responder`.
        delay_s: fixed time each request takes before its answer.
        fail_rate, rate_429, hang_rate, malformed_rate: probabilities of answering 500,
            429 (with ``Retry-After: retry_after_s``), hanging ``hang_s`` seconds then
            failing, or sending a truncated JSON body.
        seed: seeds the fault draws so a test sees the same sequence every run.
        model: the model id listed by ``/v1/models`` and echoed when a request has none.

    Attributes:
        requests: chat completion requests received. ``statuses`` counts replies by status;
        ``max_in_flight`` is the most requests handled at once; ``bodies`` keeps every
        request body for assertions.

    Use ``with StubServer(...) as server:`` and point a client at ``server.base_url``.
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        delay_s: float = 0.0,
        fail_rate: float = 0.0,
        rate_429: float = 0.0,
        hang_rate: float = 0.0,
        malformed_rate: float = 0.0,
        hang_s: float = 30.0,
        retry_after_s: float = 0.0,
        seed: int | None = 0,
        model: str = "stub",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.responder = responder or default_responder
        self.delay_s, self.hang_s, self.retry_after_s = delay_s, hang_s, retry_after_s
        self.rates = {"fail": fail_rate, "429": rate_429, "hang": hang_rate, "malformed": malformed_rate}
        if sum(self.rates.values()) > 1:
            raise ValueError("fault rates must add up to at most 1")
        self.model = model
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._bound_port: int | None = None  # kept after stop() so URLs can still be reported
        self._thread: threading.Thread | None = None
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.statuses: Counter[int] = Counter()
        self.bodies: list[dict] = []

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the stub server has not been started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. ``http://127.0.0.1:43121/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StubServer:
        self._stopping.clear()
        self._server = _Server((self._host, self._port), _Handler)
        self._server.stub = self
        self._bound_port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="stub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging and delayed requests are released at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _draw_fault(self) -> str | None:
        with self._lock:
            x = self._rng.random()
        for name, rate in self.rates.items():
            if x < rate:
                return name
            x -= rate
        return None

    def _serve_completion(self, handler: _Handler, body: dict) -> None:
        with self._lock:
            self.requests += 1
            self.bodies.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            status, payload, headers = self._answer(body)
        finally:
            # Counted out before the reply is written: a client that sends its next request
            # the moment it reads this one must not see the server over its limit.
            with self._lock:
                self.in_flight -= 1
        with self._lock:
            self.statuses[status] += 1
        handler._send(status, payload, headers)

    def _answer(self, body: dict) -> tuple[int, bytes, dict[str, str]]:
        fault = self._draw_fault()
        if self.delay_s:
            self._stopping.wait(self.delay_s)
        if fault == "hang":
            self._stopping.wait(self.hang_s)
            fault = "fail"
        if fault == "fail":
            return 500, _error("injected server error", "server_error"), {}
        if fault == "429":
            return 429, _error("injected rate limit", "rate_limit"), {"Retry-After": f"{self.retry_after_s:g}"}
        try:
            reply = self.responder(body)
        except Exception as exc:  # a responder bug must show up as a server error, not a hang
            return 500, _error(f"responder failed: {exc!r}", "server_error"), {}
        if isinstance(reply, BaseModel):
            text = reply.model_dump_json()
        elif isinstance(reply, (dict, list)):
            text = json.dumps(reply)
        else:
            text = str(reply)
        prompt_words = sum(len(_text_of(m.get("content")).split()) for m in body.get("messages") or [])
        payload = json.dumps({
            "id": f"chatcmpl-stub-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(text.split()),
                      "total_tokens": prompt_words + len(text.split())},
        }).encode()
        if fault == "malformed":
            return 200, payload[: len(payload) // 2], {}
        return 200, payload, {}


def _error(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind}}).encode()


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted (for trying a client or the CLI by hand)."""
    ap = argparse.ArgumentParser(prog="python -m dxgraph.testing.stub_server", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds per request")
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--rate-429", type=float, default=0.0)
    ap.add_argument("--hang-rate", type=float, default=0.0)
    ap.add_argument("--malformed-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="stub")
    args = ap.parse_args(argv)
    server = StubServer(delay_s=args.delay, fail_rate=args.fail_rate, rate_429=args.rate_429,
                        hang_rate=args.hang_rate, malformed_rate=args.malformed_rate, seed=args.seed,
                        model=args.model, host=args.host, port=args.port).start()
    print(f"stub OpenAI-compatible server on http://{args.host}:{server.port}/v1 (Ctrl+C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
