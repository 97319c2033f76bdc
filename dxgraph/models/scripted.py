"""A model that answers from a script, for tests and offline demos.

Tests drive the real graphs with it instead of mocking internals: the graph sends real
messages and gets back exactly what the script says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from dxgraph.errors import ModelOutputError, ModelUnavailable
from dxgraph.models.base import GenerateConfig, Message, ModelOutput, Usage

__all__ = ["ScriptedModel"]

Reply = str | dict[str, Any] | BaseModel | Exception
Responder = Callable[[list[Message]], Reply]


class ScriptedModel:
    """Replies from a list (in order) or a function of the messages.

    Args:
        replies: a list of replies used in order, or a function ``messages -> reply``.
            A reply may be text, a dict or pydantic object (sent as JSON), or an exception
            to raise (to test failure paths).
        name: the model name reported in traces.

    Attributes:
        calls: every list of messages received, in order, for assertions.
    """

    system_name = "scripted"

    def __init__(self, replies: Sequence[Reply] | Responder, *, name: str = "scripted"):
        self._replies = replies
        self._index = 0
        self.name = name
        self.spec = "scripted"
        self.calls: list[list[Message]] = []
        self.schemas: list[type[BaseModel] | None] = []  # the schema each call asked for

    def _next(self, messages: list[Message]) -> Reply:
        if callable(self._replies):
            return self._replies(messages)
        if self._index >= len(self._replies):
            raise ModelUnavailable(
                f"scripted model {self.name!r} ran out of replies after {self._index} calls"
            )
        reply = self._replies[self._index]
        self._index += 1
        return reply

    async def generate(
        self,
        messages: list[Message],
        *,
        config: GenerateConfig | None = None,
        schema: type[BaseModel] | None = None,
    ) -> ModelOutput:
        start = time.perf_counter()
        self.calls.append(list(messages))
        self.schemas.append(schema)
        reply = self._next(list(messages))
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, BaseModel):
            text = reply.model_dump_json()
        elif isinstance(reply, dict):
            text = json.dumps(reply)
        else:
            text = str(reply)
        parsed = None
        if schema is not None:
            try:
                parsed = schema.model_validate_json(text)
            except ValidationError as exc:
                raise ModelOutputError(
                    f"scripted reply does not match {schema.__name__}: {exc.errors()[0]['msg']}"
                ) from exc
        prompt_words = sum(len(m.text.split()) for m in messages)
        return ModelOutput(
            text=text,
            parsed=parsed,
            usage=Usage(input_tokens=prompt_words, output_tokens=len(text.split())),
            latency_ms=(time.perf_counter() - start) * 1000,
            model=self.name,
            finish_reason="stop",
        )

    async def aclose(self) -> None:
        return None
