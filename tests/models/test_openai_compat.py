"""The OpenAI-compatible client against httpx.MockTransport: retries, payloads, schemas, limits."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from pydantic import BaseModel

from dxgraph.errors import ModelError, ModelNotConfigured, ModelOutputError, ModelUnavailable
from dxgraph.models import ImagePart, system, user
from dxgraph.models.openai_compat import OpenAICompatModel

URL = "http://model.test/v1"


class Finding(BaseModel):
    answer: str
    confidence: float


def completion(text: str, *, prompt_tokens: int = 7, completion_tokens: int = 3, model: str = "m") -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


class Sleeps(list):
    """An injected backoff wait that records the delay instead of sleeping."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(handler, **kwargs) -> OpenAICompatModel:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAICompatModel("m", kwargs.pop("base_url", URL), http_client=client, **kwargs)


@pytest.fixture()
def sleeps():
    return Sleeps()


async def test_backoff_on_429_and_5xx_then_success(sleeps):
    statuses = iter([429, 503, 500, 502])
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        status = next(statuses, 200)
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "busy"}})
        return httpx.Response(200, json=completion("fine"))

    out = await make(handler, max_retries=4, backoff_base_s=0.5, sleep=sleeps).generate([user("hi")])
    assert out.text == "fine" and out.attempts == 5 and len(calls) == 5
    assert len(sleeps) == 4 and all(0 <= d <= cap for d, cap in zip(sleeps, [0.5, 1.0, 2.0, 4.0]))
    assert out.usage.input_tokens == 7 and out.usage.output_tokens == 3
    assert out.finish_reason == "stop" and out.latency_ms > 0


async def test_real_jitter_stays_under_the_cap(sleeps):
    recorded = sleeps
    random.seed(3)
    model = make(lambda r: httpx.Response(500), max_retries=6, backoff_base_s=1.0, backoff_max_s=5.0, sleep=sleeps)
    with pytest.raises(ModelUnavailable):
        await model.generate([user("hi")])
    caps = [1, 2, 4, 5, 5, 5]
    assert len(recorded) == 6 and all(0 <= d <= c for d, c in zip(recorded, caps))
    assert len(set(recorded)) == 6  # jittered, not a fixed schedule


async def test_retry_after_is_respected_and_capped(sleeps):
    replies = iter([
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(429, headers={"Retry-After": "120"}),
        httpx.Response(200, json=completion("ok")),
    ])
    out = await make(lambda r: next(replies), backoff_max_s=20, sleep=sleeps).generate([user("hi")])
    assert out.text == "ok" and sleeps == [3.0, 20.0]


async def test_retry_after_as_an_http_date_is_honoured(sleeps):
    when = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=8), usegmt=True)
    replies = iter([httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200, json=completion("ok"))])
    out = await make(lambda r: next(replies), backoff_max_s=20, sleep=sleeps).generate([user("hi")])
    assert out.text == "ok" and out.attempts == 2
    assert len(sleeps) == 1 and 5.0 <= sleeps[0] <= 8.0  # the date, less the time already gone


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
async def test_client_errors_other_than_429_are_not_retried(status, sleeps):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(status, headers={"Retry-After": "1"}, json={"error": {"message": "no"}})

    with pytest.raises(ModelUnavailable, match=f"HTTP {status}: no"):
        await make(handler, sleep=sleeps).generate([user("hi")])
    assert len(calls) == 1 and sleeps == []


async def test_timeouts_and_connect_errors_are_retried(sleeps):
    errors = iter([httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])

    def handler(request):
        err = next(errors, None)
        if err is not None:
            raise err
        return httpx.Response(200, json=completion("late but fine"))

    out = await make(handler, sleep=sleeps).generate([user("hi")])
    assert out.text == "late but fine" and out.attempts == 3 and len(sleeps) == 2


async def test_error_after_last_retry_names_endpoint_status_and_attempts(sleeps):
    model = make(lambda r: httpx.Response(503, json={"error": {"message": "overloaded"}}), max_retries=2,
                 sleep=sleeps)
    with pytest.raises(ModelUnavailable) as info:
        await model.generate([user("hi")])
    message = str(info.value)
    assert f"{URL}/chat/completions" in message and "HTTP 503" in message and "3 attempts" in message


async def test_error_after_timeouts_names_the_exception(sleeps):
    def handler(request):
        raise httpx.ReadTimeout("slow")

    with pytest.raises(ModelUnavailable, match=r"2 attempts.*ReadTimeout"):
        await make(handler, max_retries=1, sleep=sleeps).generate([user("hi")])


async def test_a_url_that_is_not_http_is_not_configured_and_not_retried(sleeps):
    model = OpenAICompatModel("m", "ftp://model.test/v1", http_client=httpx.AsyncClient(), sleep=sleeps)
    with pytest.raises(ModelNotConfigured, match="not an http"):
        await model.generate([user("hi")])
    assert sleeps == []


async def test_client_errors_are_not_retried_and_carry_the_server_message(sleeps):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(404, json={"error": {"message": "model 'm' does not exist"}})

    with pytest.raises(ModelUnavailable, match="HTTP 404: model 'm' does not exist"):
        await make(handler, sleep=sleeps).generate([user("hi")])
    assert len(calls) == 1 and sleeps == []


async def test_malformed_body_is_retried(sleeps):
    replies = iter([httpx.Response(200, content=b'{"choices": [{"mess'), httpx.Response(200, json=completion("ok"))])
    out = await make(lambda r: next(replies), sleep=sleeps).generate([user("hi")])
    assert out.text == "ok" and out.attempts == 2 and len(sleeps) == 1


async def test_image_payload_shape_and_generation_settings():
    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion("a fundus photograph"))

    png = b"\x89PNG\r\n\x1a\nfake"
    model = make(handler)
    from dxgraph.models import GenerateConfig

    await model.generate(
        [system("You read images."), user("What is this?", ImagePart(data=png))],
        config=GenerateConfig(temperature=0.2, max_tokens=64, seed=7),
    )
    [body] = bodies
    assert body["model"] == "m" and body["temperature"] == 0.2 and body["max_tokens"] == 64 and body["seed"] == 7
    assert body["messages"][0] == {"role": "system", "content": "You read images."}
    text_part, image_part = body["messages"][1]["content"]
    assert text_part == {"type": "text", "text": "What is this?"}
    assert image_part["type"] == "image_url"
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    import base64

    assert base64.b64decode(image_part["image_url"]["url"].split(",", 1)[1]) == png
    assert "response_format" not in body


async def test_json_schema_response_format_is_sent_and_reply_parsed():
    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion('```json\n{"answer": "glaucoma", "confidence": 0.7}\n```'))

    out = await make(handler).generate([user("diagnose")], schema=Finding)
    fmt = bodies[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Finding"
    assert fmt["json_schema"]["schema"] == Finding.model_json_schema()
    assert fmt["json_schema"]["strict"] is False  # Finding allows extra keys: strict mode would reject it
    assert out.parsed == Finding(answer="glaucoma", confidence=0.7)


async def test_invalid_json_is_repaired_with_the_validation_error():
    bodies = []
    replies = iter(['{"answer": "glaucoma"}', '{"answer": "glaucoma", "confidence": 0.8}'])

    def handler(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion(next(replies)))

    out = await make(handler).generate([user("diagnose")], schema=Finding)
    assert out.parsed.confidence == 0.8 and out.attempts == 2
    assert out.usage.input_tokens == 14  # usage adds up over the repair
    repair = bodies[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"answer": "glaucoma"}'}
    assert repair[-1]["role"] == "user" and "confidence" in repair[-1]["content"]
    assert "Field required" in repair[-1]["content"]


async def test_repairs_are_bounded():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(200, json=completion("I think it is glaucoma."))

    with pytest.raises(ModelOutputError, match=r"no valid Finding after 3 replies.*not valid JSON") as info:
        await make(handler, schema_repairs=2).generate([user("diagnose")], schema=Finding)
    assert len(calls) == 3 and isinstance(info.value, ModelError)  # ``except ModelError`` still catches it


@pytest.mark.parametrize("status", [422, 500])  # llama-cpp-python reports its validation errors as 500
async def test_falls_back_when_the_server_rejects_json_schema(status, sleeps):
    formats = []

    def handler(request):
        body = json.loads(request.content)
        fmt = body.get("response_format")
        formats.append(fmt and fmt["type"])
        if fmt and fmt["type"] == "json_schema":
            return httpx.Response(status, json={"detail": [{"loc": ["body", "response_format", "type"],
                                                            "msg": "Input should be 'text' or 'json_object'"}]})
        assert "JSON" in body["messages"][0]["content"]  # the schema now travels in the prompt
        return httpx.Response(200, json=completion('{"answer": "x", "confidence": 1}'))

    model = make(handler, sleep=sleeps)
    out = await model.generate([user("diagnose")], schema=Finding)
    assert out.parsed.answer == "x" and formats == ["json_schema", "json_object"]
    await model.generate([user("again")], schema=Finding)
    assert formats[-1] == "json_object" and len(formats) == 3  # learnt once per instance, no retries
    assert sleeps == []


async def test_concurrent_refusals_step_down_once(sleeps):
    """Eight calls refused for json_schema at once end on json_object, not on the prompt alone."""
    formats = []
    gate = asyncio.Event()

    async def handler(request):
        fmt = json.loads(request.content).get("response_format")
        formats.append(fmt and fmt["type"])
        if fmt and fmt["type"] == "json_schema":
            if formats.count("json_schema") == 8:
                gate.set()
            await gate.wait()  # every call is refused only after all eight were sent
            return httpx.Response(500, json={"detail": "response_format: Input should be 'text' or 'json_object'"})
        return httpx.Response(200, json=completion('{"answer": "x", "confidence": 1}'))

    model = make(handler, sleep=sleeps)
    outs = await asyncio.gather(*(model.generate([user(f"q{i}")], schema=Finding) for i in range(8)))
    assert all(o.parsed.answer == "x" for o in outs)
    assert formats.count("json_schema") == 8 and formats.count("json_object") == 8 and None not in formats


async def test_twenty_percent_failures_still_answer_every_call(sleeps):
    rng = random.Random(0)
    failures = 0

    async def handler(request):
        nonlocal failures
        await asyncio.sleep(0)
        if rng.random() < 0.2:
            failures += 1
            if rng.random() < 0.5:
                raise httpx.ReadTimeout("dropped")
            return httpx.Response(rng.choice([429, 500, 502, 503]))
        question = json.loads(request.content)["messages"][-1]["content"]
        return httpx.Response(200, json=completion(f"answer to {question}"))

    model = make(handler, max_retries=6, sleep=sleeps)
    outs = await asyncio.gather(*(model.generate([user(f"q{i}")]) for i in range(50)))
    assert [o.text for o in outs] == [f"answer to q{i}" for i in range(50)]
    assert failures > 0 and sum(o.attempts for o in outs) == 50 + failures


async def test_concurrency_limit_is_shared_per_endpoint():
    in_flight = peak = 0

    async def handler(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=completion("ok"))

    base = "http://limited.test/v1"
    a = make(handler, base_url=base, max_concurrency=4)
    b = make(handler, base_url=base, max_concurrency=4)  # same endpoint: same limiter
    await asyncio.gather(*(m.generate([user("x")]) for m in [a, b] * 20))
    assert peak == 4


async def test_api_key_header_from_env(monkeypatch):
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json=completion("ok"))

    monkeypatch.delenv("DXGRAPH_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    await make(handler).generate([user("x")])
    monkeypatch.setenv("DXGRAPH_API_KEY", "dx-key")
    await make(handler).generate([user("x")])
    await make(handler, api_key="explicit").generate([user("x")])
    monkeypatch.delenv("DXGRAPH_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    await make(handler).generate([user("x")])
    assert seen == ["Bearer sk-openai", "Bearer dx-key", "Bearer explicit", None]


def test_spec_and_load_model_build_the_client():
    from dxgraph.models import load_model

    model = load_model("openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1/", max_retries=1)
    assert model.spec == "openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1"
    assert model.name == "Qwen/Qwen2.5-VL-7B-Instruct" and model.system_name == "openai"
    assert model.inner.max_retries == 1


async def test_the_json_schema_is_built_once_per_class_not_per_request(monkeypatch):
    """pydantic rebuilds model_json_schema() on every call (ms each): the client caches it."""

    class Once(BaseModel):
        answer: str

    built = []
    original = Once.model_json_schema.__func__

    def counting(cls, *args, **kwargs):
        built.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Once, "model_json_schema", classmethod(counting))
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion('{"answer": "yes"}'))

    model = make(handler)
    for _ in range(5):
        out = await model.generate([user("hi")], schema=Once)
        assert out.parsed.answer == "yes"
    assert len(built) == 1
    # every request still carries the full schema, identical each time
    assert all(b["response_format"] == bodies[0]["response_format"] for b in bodies)
    assert bodies[0]["response_format"]["json_schema"]["schema"]["properties"]["answer"]["type"] == "string"


async def test_the_pooled_clients_share_one_tls_context():
    """Each httpx client loads the CA bundle into its own TLS context unless given one
    (120 ms a client on 2 cores): the shards of the shared pool are given the same one."""
    from dxgraph.models import openai_compat

    model = OpenAICompatModel("m", URL)
    clients = {id(model._client()) for _ in range(openai_compat._POOL_SHARDS)}
    state = openai_compat._loop_state()
    assert len(clients) == len(state.clients) == openai_compat._POOL_SHARDS > 1
    contexts = {id(c._transport._pool._ssl_context) for c in state.clients}
    assert len(contexts) == 1
    await model.aclose()
    assert state.clients == []
