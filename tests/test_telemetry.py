import pytest

from dxgraph.errors import ConfigError
from dxgraph.models import ScriptedModel, user
from dxgraph.telemetry import InstrumentedModel, setup_tracing, traced


@pytest.fixture()
def memory():
    exporter = setup_tracing("memory")
    yield exporter
    setup_tracing("none")


async def test_model_span_has_genai_attributes_and_no_content_by_default(memory):
    model = InstrumentedModel(ScriptedModel(["the rash started last week"], name="doc-model"))
    await model.generate([user("when did the rash start? my name is Ann Example")])
    [span] = memory.get_finished_spans()
    attrs = dict(span.attributes)
    assert span.name == "chat doc-model"
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.model"] == "doc-model"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] == 5
    assert not any("Ann Example" in str(v) or "rash" in str(v) for v in attrs.values())


async def test_content_is_captured_only_when_switched_on():
    exporter = setup_tracing("memory", capture_content=True)
    try:
        await InstrumentedModel(ScriptedModel(["ok"])).generate([user("secret words")])
        [span] = exporter.get_finished_spans()
        assert "secret words" in span.attributes["gen_ai.input.messages"]
        assert span.attributes["gen_ai.output.text"] == "ok"
    finally:
        setup_tracing("none")


async def test_failed_call_marks_the_span(memory):
    from dxgraph.errors import ModelError

    with pytest.raises(ModelError):
        await InstrumentedModel(ScriptedModel([ModelError("down")])).generate([user("x")])
    [span] = memory.get_finished_spans()
    assert span.status.status_code.name == "ERROR" and span.attributes["error.type"] == "ModelError"


def test_traced_decorator_wraps_sync_functions(memory):
    @traced("node demo", kind="test")
    def f(x):
        return x + 1

    assert f(1) == 2
    [span] = memory.get_finished_spans()
    assert span.name == "node demo" and span.attributes["kind"] == "test"


def test_unknown_exporter_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown tracing exporter 'jaeger'"):
        setup_tracing("jaeger")


def test_otlp_exporter_is_available_from_the_extra():
    assert setup_tracing("otlp") is None
    setup_tracing("none")


@pytest.fixture()
def unset_tracing(monkeypatch):
    from dxgraph import telemetry

    monkeypatch.setitem(telemetry._state, "provider", None)
    yield
    setup_tracing("none")


def test_dxgraph_trace_takes_effect_without_setup_tracing(unset_tracing, monkeypatch):
    from dxgraph import telemetry

    monkeypatch.setenv("DXGRAPH_TRACE", "memory")
    monkeypatch.setenv("DXGRAPH_TRACE_CONTENT", "1")
    assert traced("node configured")(lambda: 3)() == 3
    [span] = telemetry._state["memory"].get_finished_spans()
    assert span.name == "node configured" and telemetry.capture_content() is True


def test_console_spans_go_to_stderr_leaving_stdout_to_the_command(unset_tracing, monkeypatch, capsys):
    monkeypatch.setenv("DXGRAPH_TRACE", "console")
    traced("node printed")(lambda: None)()
    out, err = capsys.readouterr()
    assert out == "" and '"name": "node printed"' in err
