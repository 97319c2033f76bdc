"""Prompt-side schema hints for models that cannot constrain decoding."""

from __future__ import annotations

from pydantic import BaseModel

from dxgraph.agents.doctor import DoctorAction
from dxgraph.models.structured import shape_instruction


class Plain(BaseModel):
    answer: str
    level: int


def test_shape_of_a_plain_object_lists_its_keys():
    text = shape_instruction(Plain)
    assert '"answer": <string>' in text and '"level": <integer>' in text and "one of these shapes" not in text


def test_shape_of_a_choice_shows_each_alternative_with_nested_keys():
    text = shape_instruction(DoctorAction)
    ask, final = text.split("\nor\n")
    assert '"question": <string>' in ask and '"final"' not in ask
    assert '"label": <one of the listed values> or null' in final and '"basis": <string>' in final
    assert "eczema" not in text  # the long answer list stays in the system prompt, not twice
