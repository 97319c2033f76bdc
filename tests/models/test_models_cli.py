"""``dxgraph models check/list`` and the tracing of a real provider call."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from dxgraph.cli import app
from dxgraph.models import user
from dxgraph.models.check import check_role
from dxgraph.models.openai_compat import OpenAICompatModel
from dxgraph.testing.stub_server import StubServer
from dxgraph.telemetry import InstrumentedModel, setup_tracing

runner = CliRunner()


def test_models_check_json_against_the_stub_server(monkeypatch):
    with StubServer() as server:
        monkeypatch.setenv("DXGRAPH_DOCTOR_MODEL", f"openai:stub-doc@{server.base_url}")
        result = runner.invoke(app, ["models", "check", "doctor", "--json"])
        assert server.requests == 1
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["role"] == "doctor"
    assert data["spec"] == f"openai:stub-doc@{server.base_url}"
    assert data["output_tokens"] > 0 and data["latency_ms"] > 0
    assert data["text"].startswith("stub reply to:")


def test_models_check_fails_with_exit_1_when_the_server_is_down(monkeypatch, tmp_path):
    (tmp_path / "dxgraph.yaml").write_text("max_retries: 0\n")  # one attempt: no backoff to wait out
    monkeypatch.chdir(tmp_path)
    with StubServer(fail_rate=1.0) as server:
        monkeypatch.setenv("DXGRAPH_VLM_MODEL", f"openai:vlm@{server.base_url}")
        result = runner.invoke(app, ["models", "check", "vlm", "--json"])
        assert server.requests == 1
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data["ok"] is False and "HTTP 500" in data["error"]


async def test_check_role_unconfigured_and_rules():
    planner = await check_role("planner")
    assert planner["ok"] is False and "DXGRAPH_PLANNER_MODEL" in planner["error"]
    judge = await check_role("judge")
    assert judge["ok"] is True and judge["spec"] == "rules" and "rule baseline" in judge["text"]


def test_models_list_shows_each_role_and_its_source(monkeypatch):
    monkeypatch.setenv("DXGRAPH_PATIENT_MODEL", "local:smollm2")
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0
    rows = {r["role"]: r for r in json.loads(result.stdout)}
    assert list(rows) == ["planner", "doctor", "patient", "judge", "vlm"]
    assert rows["patient"] == {"role": "patient", "spec": "local:smollm2", "source": "DXGRAPH_PATIENT_MODEL"}
    assert rows["doctor"]["spec"] == "rules" and rows["planner"]["spec"] is None


def _usage_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={
        "model": "served-name",
        "choices": [{"message": {"role": "assistant", "content": "the optic cup looks enlarged"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5},
    })


async def test_provider_call_span_has_genai_attributes_without_content():
    exporter = setup_tracing("memory")
    try:
        client = httpx.AsyncClient(transport=httpx.MockTransport(_usage_handler))
        model = InstrumentedModel(OpenAICompatModel("qwen-vl", "http://vllm.test/v1", http_client=client))
        await model.generate([user("patient Jane Roe, 54, asks about her eye")])
        [span] = exporter.get_finished_spans()
    finally:
        setup_tracing("none")
    attrs = dict(span.attributes)
    assert attrs["gen_ai.request.model"] == "qwen-vl" and attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.response.model"] == "served-name"
    assert attrs["gen_ai.usage.input_tokens"] == 11 and attrs["gen_ai.usage.output_tokens"] == 5
    assert not any("Jane Roe" in str(v) or "optic cup" in str(v) for v in attrs.values())


async def test_provider_call_span_has_content_when_switched_on():
    exporter = setup_tracing("memory", capture_content=True)
    try:
        client = httpx.AsyncClient(transport=httpx.MockTransport(_usage_handler))
        model = InstrumentedModel(OpenAICompatModel("qwen-vl", "http://vllm.test/v1", http_client=client))
        await model.generate([user("patient Jane Roe asks about her eye")])
        [span] = exporter.get_finished_spans()
    finally:
        setup_tracing("none")
    assert "Jane Roe" in span.attributes["gen_ai.input.messages"]
    assert span.attributes["gen_ai.output.text"] == "the optic cup looks enlarged"


def test_models_check_of_an_unconfigured_role_says_how_to_configure_it(monkeypatch):
    monkeypatch.delenv("DXGRAPH_VLM_MODEL", raising=False)
    result = runner.invoke(app, ["models", "check", "vlm"])
    assert result.exit_code == 1
    assert "None" not in result.stdout and "no model is configured for 'vlm'" in result.stdout
    assert "DXGRAPH_VLM_MODEL=openai:MODEL@http://HOST:PORT/v1" in result.stdout
    assert "smollm2" not in result.stdout  # a text-only model cannot serve the VLM role


def test_models_export_into_a_finished_export_says_it_skipped(tmp_path):
    out = tmp_path / "smollm2-hf"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "model.safetensors").write_bytes(b"\0" * 2_000_000)
    result = runner.invoke(app, ["models", "export", "smollm2", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote" not in result.stdout and "already holds a transformers model (2 MB), skipped" in result.stdout
    assert f"vllm serve {out} --served-model-name smollm2" in result.stdout


def test_models_export_of_something_unknown_says_what_to_pass(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "dxgraph", "models", "export", "smollm3", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("error: cannot export 'smollm3': it does not exist; pass 'smollm2' or the path of "
                                "a .gguf file, e.g. dxgraph models export smollm2 ./smollm2-hf")
