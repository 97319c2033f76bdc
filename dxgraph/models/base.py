"""The model seam: every agent, patient, judge and VLM tool talks to a ``ChatModel``.

A ``ChatModel`` takes a list of ``Message`` (text and image parts) and returns a
``ModelOutput``. When a pydantic ``schema`` is passed, providers ask for JSON-schema output
where the server supports it and return the validated object in ``ModelOutput.parsed``.
"""

from __future__ import annotations

import base64
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TextPart",
    "ImagePart",
    "Message",
    "GenerateConfig",
    "Usage",
    "ModelOutput",
    "ChatModel",
    "system",
    "user",
    "assistant",
]


class TextPart(BaseModel):
    model_config = ConfigDict(frozen=True)
    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    """An image sent inline. ``data`` is the encoded file (PNG/JPEG), not pixels."""

    model_config = ConfigDict(frozen=True)
    type: Literal["image"] = "image"
    data: bytes
    mime: str = "image/png"

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart | ImagePart]

    @property
    def text(self) -> str:
        """The message's text parts joined; images are left out."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def images(self) -> list[ImagePart]:
        if isinstance(self.content, str):
            return []
        return [p for p in self.content if isinstance(p, ImagePart)]


def system(text: str) -> Message:
    return Message(role="system", content=text)


def user(text: str, *images: ImagePart) -> Message:
    if not images:
        return Message(role="user", content=text)
    return Message(role="user", content=[TextPart(text=text), *images])


def assistant(text: str) -> Message:
    return Message(role="assistant", content=text)


class GenerateConfig(BaseModel):
    """Per-call generation settings. ``None`` leaves the provider's default."""

    model_config = ConfigDict(extra="forbid")
    temperature: float | None = 0.0
    max_tokens: int | None = 512
    seed: int | None = None
    stop: list[str] | None = None
    timeout_s: float | None = None


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class ModelOutput(BaseModel):
    """What a model call returns: text, the parsed object when a schema was asked, cost."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    text: str
    parsed: Any = None
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0
    model: str = ""
    finish_reason: str | None = None
    attempts: int = 1


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers chat messages.

    Attributes:
        spec: the spec string it was built from (``openai:M@URL``, ``local:smollm2``...).
        name: the model name reported in traces (``gen_ai.request.model``).
        system_name: the provider, for ``gen_ai.system`` (``openai``, ``transformers``...).
    """

    spec: str
    name: str
    system_name: str

    async def generate(
        self,
        messages: list[Message],
        *,
        config: GenerateConfig | None = None,
        schema: type[BaseModel] | None = None,
    ) -> ModelOutput: ...

    async def aclose(self) -> None: ...
