"""The client against the real stub server on 127.0.0.1: sockets, pooling, injected faults."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from pydantic import BaseModel

from dxgraph.errors import ModelError
from dxgraph.models import user
from dxgraph.models.openai_compat import OpenAICompatModel
from dxgraph.testing.stub_server import StubServer, example_for_schema


class Triage(BaseModel):
    urgent: bool
    level: int
    reasons: list[str]
    note: str | None = None


async def test_end_to_end_plain_and_structured():
    with StubServer() as server:
        models = httpx.get(f"{server.base_url}/models").json()
        assert models["data"][0]["id"] == "stub"
        model = OpenAICompatModel("stub", server.base_url)
        out = await model.generate([user("my knee hurts")])
        assert out.text == "stub reply to: my knee hurts"
        assert out.usage.input_tokens == 3 and out.usage.output_tokens == 6
        structured = await model.generate([user("triage")], schema=Triage)
        assert isinstance(structured.parsed, Triage)
        await model.aclose()
        assert server.requests == 2
        assert server.bodies[1]["response_format"]["json_schema"]["schema"]["title"] == "Triage"


async def test_twenty_percent_failing_server_still_completes_all():
    with StubServer(fail_rate=0.15, rate_429=0.05, seed=1) as server:
        model = OpenAICompatModel("stub", server.base_url, max_retries=8, backoff_base_s=0.01, backoff_max_s=0.05)
        outs = await asyncio.gather(*(model.generate([user(f"question {i}")]) for i in range(60)))
        await model.aclose()
    assert [o.text for o in outs] == [f"stub reply to: question {i}" for i in range(60)]
    failed = server.statuses[500] + server.statuses[429]
    assert failed > 0 and server.statuses[200] == 60
    assert sum(o.attempts for o in outs) == server.requests == 60 + failed


async def test_hangs_time_out_and_malformed_bodies_are_retried():
    with StubServer(hang_rate=0.2, malformed_rate=0.2, hang_s=5, seed=4) as server:
        model = OpenAICompatModel("stub", server.base_url, timeout_s=0.3, max_retries=8,
                                  backoff_base_s=0.01, backoff_max_s=0.02)
        outs = await asyncio.gather(*(model.generate([user(f"q{i}")]) for i in range(20)))
        await model.aclose()
    assert all(o.text == f"stub reply to: q{i}" for i, o in enumerate(outs))
    assert max(o.attempts for o in outs) > 1


async def test_gives_up_with_the_endpoint_in_the_error():
    with StubServer(fail_rate=1.0) as server:
        model = OpenAICompatModel("stub", server.base_url, max_retries=2, backoff_base_s=0.01)
        with pytest.raises(ModelError, match=r"127\.0\.0\.1.*3 attempts.*HTTP 500"):
            await model.generate([user("x")])
        await model.aclose()
    assert server.requests == 3


async def test_endpoint_limit_holds_against_a_real_server():
    with StubServer(delay_s=0.05) as server:
        model = OpenAICompatModel("stub", server.base_url, max_concurrency=8)
        await asyncio.gather(*(model.generate([user("x")]) for i in range(40)))
        await model.aclose()
    assert server.max_in_flight == 8


@pytest.mark.slow
async def test_sustains_128_concurrent_requests_at_a_fixed_delay():
    with StubServer(delay_s=0.5) as server:
        model = OpenAICompatModel("stub", server.base_url, max_concurrency=128)
        await model.generate([user("warm up")])
        start = time.perf_counter()
        await asyncio.gather(*(model.generate([user(f"q{i}")]) for i in range(256)))
        wall = time.perf_counter() - start
        await model.aclose()
    assert server.max_in_flight == 128
    assert wall < 5.0, f"256 requests at 128 in flight took {wall:.2f} s (bound 1.0 s)"


def test_example_for_schema_is_valid_for_nested_models():
    class Inner(BaseModel):
        kind: str
        size: float

    class Outer(BaseModel):
        items: list[Inner]
        best: Inner | None
        flag: bool

    value = example_for_schema(Outer.model_json_schema())
    assert Outer.model_validate(value).items[0].kind == "stub"


def test_responder_and_failing_responder():
    def responder(body):
        if "boom" in body["messages"][-1]["content"]:
            raise RuntimeError("responder bug")
        return {"echo": body["messages"][-1]["content"]}

    with StubServer(responder=responder) as server:
        ok = httpx.post(f"{server.base_url}/chat/completions",
                        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        bad = httpx.post(f"{server.base_url}/chat/completions",
                         json={"model": "m", "messages": [{"role": "user", "content": "boom"}]})
    assert ok.json()["choices"][0]["message"]["content"] == '{"echo": "hi"}'
    assert bad.status_code == 500 and "responder bug" in bad.json()["error"]["message"]
