"""What a doctor says: a question or a final answer, its wire schema, and the Doctor protocol.

Doctors are stateless: each ``act`` call gets the whole transcript, which is what sits in the
dialogue graph's state, so one doctor object serves many concurrent consultations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dxgraph.agents.doctor_view import CaseView
from dxgraph.agents.prompts import render_final
from dxgraph.simulator import labels as label_table
from dxgraph.types import FinalDiagnosis, Turn

__all__ = ["DoctorAction", "FinalAction", "DoctorTurn", "Doctor"]


def _final_wire_schema() -> dict:
    """The final answer as a closed object whose labels are the answer list (or other/null).

    Servers that constrain decoding (vLLM's guided JSON, llama.cpp's grammars) then cannot
    produce a label outside the list, so even a small model's final answer is usable.
    """
    # imaging outcomes ("glaucoma suspect", "cardiomegaly") are answers too: the prompt lists
    # them only when a workflow's evidence is in the consultation
    labels = sorted(label_table.LABELS) + sorted(label_table.IMAGING_LABELS) + ["other"]
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "label": {"anyOf": [{"enum": labels}, {"type": "null"}]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "differential": {"type": "array", "items": {"enum": labels}, "maxItems": 3},
            "basis": {"type": "string"},
        },
        "required": ["label", "confidence", "differential", "basis"],
    }


def _action_wire_schema(schema: dict, _cls: type | None = None) -> None:
    """DoctorAction on the wire: a question object or a final object, never both."""
    schema.clear()
    schema.update({
        "title": "DoctorAction",
        "anyOf": [
            {"type": "object", "additionalProperties": False,
             "properties": {"question": {"type": "string"}}, "required": ["question"]},
            {"type": "object", "additionalProperties": False,
             "properties": {"final": _final_wire_schema()}, "required": ["final"]},
        ],
    })


def _final_action_wire_schema(schema: dict, _cls: type | None = None) -> None:
    schema.clear()
    schema.update({"title": "FinalAction", "type": "object", "additionalProperties": False,
                   "properties": {"final": _final_wire_schema()}, "required": ["final"]})


class DoctorAction(BaseModel):
    """One doctor turn: exactly one of a question or a final diagnosis.

    Its JSON schema (what a server constrains decoding to) is the two closed shapes with the
    answer list as an enum; validation stays lenient on labels so synonyms can be mapped.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_action_wire_schema)
    question: str | None = None
    final: FinalDiagnosis | None = None

    @model_validator(mode="after")
    def _one(self) -> DoctorAction:
        if (self.question is None) == (self.final is None):
            raise ValueError("give exactly one of 'question' or 'final'")
        if self.question is not None and not self.question.strip():
            raise ValueError("question is empty")
        return self


class FinalAction(DoctorAction):
    """Asked when the consultation must end: the wire schema allows only the final answer.

    Validation is DoctorAction's, so a model that still asks a question (an unconstrained
    one) is told so and repaired, then recorded as abstaining, as before.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_final_action_wire_schema)


class DoctorTurn(BaseModel):
    """A doctor's action with its cost, and any tool evidence it gathered first."""

    action: DoctorAction
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_turns: list[Turn] = Field(default_factory=list)

    @property
    def text(self) -> str:
        a = self.action
        return a.question if a.question is not None else render_final(a.final)


@runtime_checkable
class Doctor(Protocol):
    """What the dialogue graph drives. ``must_finalize`` asks for the final answer now."""

    spec: str

    async def act(
        self, view: CaseView, transcript: Sequence[Turn], *, must_finalize: bool = False
    ) -> DoctorTurn: ...
