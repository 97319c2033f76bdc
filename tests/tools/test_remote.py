import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn

import tests.workflows.toytools as toy
from dxgraph.errors import ToolError
from dxgraph.telemetry import setup_tracing
from dxgraph.tools.codec import decode_value, encode_value
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.cache import ToolCache
from dxgraph.tools.registry import get_tool
from dxgraph.tools.remote import RemoteTools
from dxgraph.tools.runner import ToolRunner
from dxgraph.tools.server import create_app
from dxgraph.agents.diagnose import run_workflow
from tests.agents.test_graph import WF
from dxgraph.testing.net import free_port as _free_port




@pytest.fixture(scope="module")
def server_url():
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("tool server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_codec_round_trips_images_masks_and_refuses_pickles():
    img = Image(array=np.arange(12, dtype=np.float32).reshape(3, 4), spacing=(0.5, 0.25), source="x", meta={"m": 1})
    back = decode_value(encode_value(img))
    assert np.array_equal(back.array, img.array) and back.spacing == (0.5, 0.25) and back.meta == {"m": 1}
    mask = decode_value(encode_value(Mask(np.eye(3, dtype=bool), label="disc")))
    assert mask.array.dtype == bool and mask.label == "disc"
    with pytest.raises(TypeError):
        encode_value(object())
    obj = np.array([{"a": 1}], dtype=object)
    import base64, io
    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=True)
    with pytest.raises(Exception):
        decode_value({"type": "array", "array": base64.b64encode(buf.getvalue()).decode()})


def test_server_lists_tools(server_url):
    tools = httpx.get(f"{server_url}/v1/tools").json()
    names = {t["name"] for t in tools}
    assert {"toy_load", "toy_split", "toy_fraction"} <= names
    split = httpx.get(f"{server_url}/v1/tools/toy_split").json()
    assert split["outputs"] == ["low", "high"] and split["parameters"]["properties"]["cut"]["type"] == "number"
    assert httpx.get(f"{server_url}/v1/tools/nope").status_code == 404


async def test_workflow_with_remote_tools_matches_local_and_keeps_one_trace(server_url, tmp_path):
    image = tmp_path / "img.txt"
    image.write_text("0.1 0.7 0.8 0.9\n")
    from dxgraph.workflows.loader import parse_workflow

    wf = parse_workflow(WF)
    local = await run_workflow(wf, [str(image)], runner=ToolRunner(ToolCache(None), strict=True))
    memory = setup_tracing("memory")
    try:
        toy.CALLS.clear()
        remote = RemoteTools(server_url, ["toy_load", "toy_split", "toy_fraction", "toy_fail"])
        runner = ToolRunner(ToolCache(tmp_path / "cache"), remote=remote, strict=True)
        dx = await run_workflow(wf, [str(image)], runner=runner)
        spans = memory.get_finished_spans()
        await remote.aclose()
    finally:
        setup_tracing("none")
    assert [(i.id, i.value, i.status) for i in dx.indicators] == [(i.id, i.value, i.status) for i in local.indicators]
    assert "segmenter found nothing" in dx.indicators[2].error  # the 422 came back as a ToolError
    remote_spans = [s for s in spans if s.name.startswith("remote tool")]
    assert remote_spans, [s.name for s in spans]
    assert {s.context.trace_id for s in remote_spans} == {next(s for s in spans if s.name == "workflow toy").context.trace_id}


async def test_unreachable_server_is_a_tool_error_after_retries():
    remote = RemoteTools(f"http://127.0.0.1:{_free_port()}", "*", max_retries=2, backoff_s=0.01, timeout_s=2)
    with pytest.raises(ToolError, match="failed after 3 attempts"):
        await remote.call(get_tool("toy_fraction"), {"low": Mask(np.ones(2)), "high": Mask(np.zeros(2))})
    await remote.aclose()


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _mock_remote(replies, calls: list, **kwargs) -> tuple[RemoteTools, Sleeps]:
    """A RemoteTools whose server answers ``replies`` in order and whose backoff is recorded."""
    replies = iter(replies)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return next(replies)

    remote = RemoteTools("http://tools.test", "*", http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                         **kwargs)
    remote.sleep = Sleeps()
    return remote, remote.sleep


_FRACTION = {"low": Mask(np.ones(2)), "high": Mask(np.zeros(2))}
_OK = httpx.Response(200, json={"outputs": {"fraction": encode_value(0.25)}})


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured_on_429_and_5xx(status):
    calls: list = []
    remote, sleeps = _mock_remote([httpx.Response(status, headers={"Retry-After": "7"}), _OK], calls)
    out = await remote.call(get_tool("toy_fraction"), _FRACTION)
    assert out == {"fraction": 0.25} and len(calls) == 2 and sleeps == [7.0]


async def test_retry_after_is_capped_and_attempts_are_counted():
    calls: list = []
    busy = httpx.Response(503, headers={"Retry-After": "3600"})
    remote, sleeps = _mock_remote([busy, busy, busy], calls, max_retries=2)
    with pytest.raises(ToolError, match=r"failed after 3 attempts \(HTTP 503\)"):
        await remote.call(get_tool("toy_fraction"), _FRACTION)
    assert len(calls) == 3 and sleeps == [20.0, 20.0]  # an hour asked, the policy's cap waited


async def test_transport_errors_back_off_exponentially_with_jitter():
    calls: list = []

    def handler(request):
        calls.append(request)
        if len(calls) < 4:
            raise httpx.ConnectTimeout("slow")
        return _OK

    remote = RemoteTools("http://tools.test", "*", http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                         max_retries=3, backoff_s=0.5)
    remote.sleep = sleeps = Sleeps()
    assert await remote.call(get_tool("toy_fraction"), _FRACTION) == {"fraction": 0.25}
    assert len(sleeps) == 3 and all(0 <= d <= cap for d, cap in zip(sleeps, [0.5, 1.0, 2.0]))


@pytest.mark.parametrize(("status", "message"), [
    (400, r"failed after 1 attempts \(HTTP 400\)"),
    (404, "has no tool 'toy_fraction'"),
    (422, "segmenter found nothing"),
])
async def test_client_errors_other_than_429_are_not_retried(status, message):
    calls: list = []
    reply = httpx.Response(status, headers={"Retry-After": "1"}, json={"error": "segmenter found nothing"})
    remote, sleeps = _mock_remote([reply], calls)
    with pytest.raises(ToolError, match=message):
        await remote.call(get_tool("toy_fraction"), _FRACTION)
    assert len(calls) == 1 and sleeps == []


async def test_a_refused_token_says_what_to_set_against_the_real_server():
    """A server started with a token answers 401; the client names DXGRAPH_TOOLS_TOKEN, not
    only the status, and never echoes the token it sent."""
    secret = "s3cret-token-0123456789abcdef"
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(token=secret), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not server.started:
            assert time.time() < deadline, "tool server did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        for token, says in [(None, "none was sent"), ("wrong-token-0123456789", "not accepted")]:
            remote = RemoteTools(url, "*", token=token, max_retries=3)
            remote.sleep = Sleeps()
            with pytest.raises(ToolError) as err:
                await remote.call(get_tool("toy_fraction"), _FRACTION)
            message = str(err.value)
            assert "HTTP 401" in message and says in message and "DXGRAPH_TOOLS_TOKEN" in message, message
            assert "wrong-token" not in message and remote.sleep == []  # not retried
            await remote.aclose()
        right = RemoteTools(url, "*", token=secret)
        assert set(await right.call(get_tool("toy_fraction"), _FRACTION)) == {"fraction"}
        await right.aclose()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
