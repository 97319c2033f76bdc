import pytest

from dxgraph.config import load_settings, role_spec
from dxgraph.errors import ConfigError
from dxgraph.models import parse_spec


def test_defaults_rules_where_a_baseline_exists_else_none():
    s = load_settings()
    assert role_spec(s, "doctor") == "rules" and role_spec(s, "judge") == "rules"
    assert role_spec(s, "vlm") is None and role_spec(s, "planner") is None
    with pytest.raises(ConfigError, match="unknown role 'nurse'"):
        role_spec(s, "nurse")


def test_env_overrides_file(tmp_path, monkeypatch):
    cfg = tmp_path / "dxgraph.yaml"
    cfg.write_text("models:\n  doctor: local:smollm2\n  vlm: openai:m@http://127.0.0.1:1/v1\nmax_concurrency: 4\n")
    monkeypatch.setenv("DXGRAPH_CONFIG", str(cfg))
    monkeypatch.setenv("DXGRAPH_DOCTOR_MODEL", "openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1")
    s = load_settings()
    assert s.models.doctor.startswith("openai:Qwen") and s.models.vlm.startswith("openai:m@")
    assert s.max_concurrency == 4


def test_unknown_key_in_config_is_an_error_with_the_file(tmp_path):
    cfg = tmp_path / "dxgraph.yaml"
    cfg.write_text("modles:\n  doctor: rules\n")
    with pytest.raises(ConfigError, match=r"dxgraph.yaml:1: modles: unknown key \(did you mean 'models'\?\)"):
        load_settings(cfg)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("home: /tmp/x\nmax_concurrency: 0\n", "dxgraph.yaml:2: max_concurrency: should be greater than or equal to 1"),
        ("models:\n  doctor: rules\n  vlmm: x\n", "dxgraph.yaml:3: models.vlmm: unknown key (did you mean 'vlm'?)"),
        ("telemetry:\n  exporter: jaeger\n",
         "dxgraph.yaml:2: telemetry.exporter: must be one of 'none', 'console'"),
        ("max_retries: 2\nmodels: rules\n", "dxgraph.yaml:2: models: should be a mapping"),
    ],
)
def test_config_errors_are_one_line_with_file_line_and_key(tmp_path, text, expected):
    cfg = tmp_path / "dxgraph.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    message = str(info.value)
    assert message.startswith(str(cfg)) and expected in message and "\n" not in message, message


def test_a_bad_environment_variable_is_named_with_the_allowed_values(monkeypatch):
    monkeypatch.setenv("DXGRAPH_TRACE", "bogus")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("DXGRAPH_TRACE='bogus': ") and "'none', 'console', 'otlp' or 'memory'" in message


def test_an_empty_models_section_is_no_models(tmp_path):
    cfg = tmp_path / "dxgraph.yaml"
    cfg.write_text("models:\n#  doctor: local:smollm2\n")
    assert role_spec(load_settings(cfg), "doctor") == "rules"


def test_bad_yaml_in_config_names_the_line(tmp_path):
    cfg = tmp_path / "dxgraph.yaml"
    cfg.write_text("models:\n  doctor: [rules\n")
    with pytest.raises(ConfigError, match=r"dxgraph.yaml:\d+: not valid YAML"):
        load_settings(cfg)


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1", ("openai", "Qwen/Qwen2.5-VL-7B-Instruct", "http://localhost:8000/v1")),
        ("openai:gpt@x@https://h/v1/", ("openai", "gpt@x", "https://h/v1")),
        ("local:smollm2", ("local", "smollm2", None)),
        ("rules", ("rules", "rules", None)),
    ],
)
def test_spec_strings(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["gpt-4", "openai:model", "openai:m@ftp://x", "hf:x", "local:"])
def test_bad_specs_say_what_to_write(spec):
    with pytest.raises(ConfigError, match="spec"):
        parse_spec(spec)
