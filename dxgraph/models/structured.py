"""Structured output shared by the providers: ask for JSON, parse it, say what was wrong.

Servers constrain decoding to a JSON schema when they can; small local models and servers
without that feature only get the schema in the prompt. Either way the reply is validated
with the pydantic model, and a bad reply is sent back with the validation error so the model
can repair it, a bounded number of times (STYLE.md rule 4).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from dxgraph.errors import ModelOutputError
from dxgraph.models.base import Message, ModelOutput, Usage, assistant, user

__all__ = [
    "RawReply",
    "json_schema",
    "generate_with_repairs",
    "StructuredOutputError",
    "parse_structured",
    "repair_messages",
    "response_format",
    "shape_instruction",
    "first_key_prefix",
    "with_instruction",
]

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")


class StructuredOutputError(ValueError):
    """A reply that is not JSON, or JSON that does not match the schema (one-line reason)."""


def _json_candidate(text: str) -> str:
    """The part of ``text`` that should be the JSON object: fences and chatter removed."""
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        return stripped
    start = stripped.find("{")
    return stripped[start:] if start >= 0 else stripped


def parse_structured(text: str, schema: type[BaseModel]) -> BaseModel:
    """Validate a model reply against ``schema``, tolerating ```json fences and a preamble.

    Raises:
        StructuredOutputError: with a short reason fit to send back to the model.
    """
    candidate = _json_candidate(text)
    try:
        # raw_decode accepts trailing text after the object (small models often add some).
        value, _ = json.JSONDecoder().raw_decode(candidate)
    except json.JSONDecodeError as exc:
        raise StructuredOutputError(f"the reply is not valid JSON ({exc.msg} at char {exc.pos})") from None
    try:
        return schema.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise StructuredOutputError(f"the JSON does not match {schema.__name__}: {problems}") from None


@functools.lru_cache(maxsize=1024)
def json_schema(schema: type[BaseModel]) -> dict:
    """``schema.model_json_schema()``, built once per class (treat the result as read-only).

    pydantic rebuilds the schema on every call (2-3 ms for the doctor's action with its
    answer list); a benchmark asks for the same few classes thousands of times, so building
    it per request was the largest cost of the client per model call. Classes are stable:
    one made per answer list (the patient's fact ids) is itself cached by its maker.
    """
    return schema.model_json_schema()


def _hint(node: dict, defs: dict) -> str:
    if "$ref" in node:
        node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
    if "enum" in node:
        if len(node["enum"]) > 8:  # a long answer list is in the prompt already
            return "<one of the listed values>"
        return " | ".join(json.dumps(v) for v in node["enum"])
    for union in ("anyOf", "oneOf"):
        if union in node:
            return " or ".join(_hint(o, defs) for o in node[union])
    kind = node.get("type", "object")
    if kind == "object" and node.get("properties"):
        return "{" + ", ".join(f'"{k}": {_hint(v, defs)}' for k, v in node["properties"].items()) + "}"
    if kind == "array":
        return f"[{_hint(node.get('items', {}), defs)}, ...]"
    return {"boolean": "true or false", "null": "null"}.get(kind, f"<{kind}>")


def _object_shape(node: dict, defs: dict) -> str:
    lines = [f'  "{name}": {_hint(sub, defs)}' for name, sub in node.get("properties", {}).items()]
    return "{\n" + ",\n".join(lines) + "\n}"


@functools.lru_cache(maxsize=1024)
def shape_instruction(schema: type[BaseModel]) -> str:
    """A prompt asking for JSON by the shape of an example, not the schema text.

    Small models asked with a raw JSON schema tend to copy the schema back; a template of
    keys and value kinds gets an instance far more often. A schema that is a choice of
    objects (``anyOf`` at the root) is shown as its alternatives.
    """
    body = json_schema(schema)
    defs = body.get("$defs", {})
    options = [o for o in body.get("anyOf", []) if "properties" in o]
    if options and "properties" not in body:
        shapes = "\nor\n".join(_object_shape(o, defs) for o in options)
        return f"Reply with only one JSON object, no prose, in exactly one of these shapes:\n{shapes}"
    return f"Reply with only one JSON object, no prose, with exactly these keys:\n{_object_shape(body, defs)}"


def first_key_prefix(schema: type[BaseModel]) -> str:
    """The opening of the expected object up to its first value, e.g. ``{"answer": "``."""
    props = json_schema(schema).get("properties", {})
    if not props:
        return "{"
    name, node = next(iter(props.items()))
    return f'{{"{name}": ' + ('"' if node.get("type") == "string" and "enum" not in node else "")


def with_instruction(messages: list[Message], instruction: str) -> list[Message]:
    """Append ``instruction`` to the system message, or put one first if there is none."""
    if messages and messages[0].role == "system" and isinstance(messages[0].content, str):
        first = Message(role="system", content=f"{messages[0].content}\n\n{instruction}")
        return [first, *messages[1:]]
    return [Message(role="system", content=instruction), *messages]


def repair_messages(messages: list[Message], bad_reply: str, error: Exception) -> list[Message]:
    """The conversation plus the bad reply and what was wrong with it, for one more try."""
    return [
        *messages,
        assistant(bad_reply),
        user(f"That reply was rejected: {error}. Reply again with only the corrected JSON object."),
    ]


def _strict_compatible(node: object) -> bool:
    """OpenAI's strict mode wants every object closed and every property required."""
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            props = node.get("properties", {})
            if node.get("additionalProperties") is not False or set(node.get("required", [])) != set(props):
                return False
        return all(_strict_compatible(v) for v in node.values())
    if isinstance(node, list):
        return all(_strict_compatible(v) for v in node)
    return True


@functools.lru_cache(maxsize=1024)
def response_format(schema: type[BaseModel]) -> dict:
    """The Chat Completions ``response_format`` asking for ``schema`` (built once per class;
    read-only: it goes into every request body for that class).

    ``strict`` is set only when the schema meets OpenAI's strict rules, so a hosted API does
    not reject an ordinary pydantic model; vLLM and llama.cpp constrain decoding either way.
    """
    body = json_schema(schema)
    return {
        "type": "json_schema",
        "json_schema": {
            "name": _NAME_OK.sub("_", schema.__name__)[:64] or "output",
            "schema": body,
            "strict": _strict_compatible(body),
        },
    }


@dataclass
class RawReply:
    """One completion as a provider got it, before structured validation."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    model: str = ""
    attempts: int = 1


async def generate_with_repairs(
    conversation: list[Message],
    schema: type[BaseModel] | None,
    repairs: int,
    complete: Callable[[list[Message], int], Awaitable[RawReply]],
    *,
    who: str,
) -> ModelOutput:
    """Call ``complete`` until the reply validates against ``schema`` (at most ``repairs``
    extra calls, each shown the bad reply and what was wrong with it).

    Args:
        conversation: the messages of the first call.
        schema: the pydantic model the reply must match, or None for plain text.
        repairs: extra calls allowed after an invalid reply.
        complete: the provider's one call: ``(messages, call_number) -> RawReply``.
        who: how the model is named in the error (``model 'm' at URL``).

    Raises:
        ModelOutputError: still invalid after the repairs.
    """
    start = time.perf_counter()
    input_tokens = output_tokens = attempts = 0
    error: StructuredOutputError | None = None
    for call in range(1, (repairs + 1 if schema is not None else 1) + 1):
        raw = await complete(conversation, call)
        input_tokens += raw.input_tokens
        output_tokens += raw.output_tokens
        attempts += raw.attempts
        parsed = None
        if schema is not None:
            try:
                parsed = parse_structured(raw.text, schema)
            except StructuredOutputError as exc:
                error = exc
                conversation = repair_messages(conversation, raw.text, exc)
                continue
        return ModelOutput(
            text=raw.text,
            parsed=parsed,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            latency_ms=(time.perf_counter() - start) * 1000,
            model=raw.model,
            finish_reason=raw.finish_reason,
            attempts=attempts,
        )
    assert schema is not None and error is not None
    raise ModelOutputError(f"{who}: no valid {schema.__name__} after {repairs + 1} replies; last problem: {error}")
