"""The workflow file format, as pydantic models with ``extra="forbid"``.

A workflow names its image inputs, its indicators (each a chain of registered tool steps
ending in a value, with a rule) and its decision. Structural checks that need the tool
registry (unknown tool, unresolved input, cycles, rule names) live in ``loader.py`` so this
module stays importable without loading any tool.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Workflow", "Indicator", "Step", "Decision", "InputSlot", "Reference", "Outcomes"]

_ID = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reference(_Strict):
    """A guideline source a criterion rests on."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    citation: str
    url: str | None = None


class Outcomes(_Strict):
    positive: str
    negative: str
    indeterminate: str = "indeterminate: too little evidence available"


class InputSlot(_Strict):
    """An image the workflow needs, e.g. ``image`` or ``ed``/``es`` volumes."""

    name: str = Field(pattern=_ID)
    description: str = ""
    dims: Literal["2d", "3d", "color", "grey", "any"] = "any"
    needs_spacing: bool = False  # measurements in mm/mL: an image without header spacing is refused


class Step(_Strict):
    """One tool call. ``inputs`` bind tool parameters to names in scope (workflow inputs or
    earlier outputs); ``args`` are literal settings; ``outputs`` name what it returns."""

    tool: str
    inputs: dict[str, str] = Field(default_factory=dict)
    args: dict[str, Any] = Field(default_factory=dict)
    outputs: str | list[str] | dict[str, str] | None = None


class Indicator(_Strict):
    """One clinical criterion: tool steps ending in a value, and a rule on that value."""

    id: str = Field(pattern=_ID)
    description: str
    kind: Literal["quantitative", "qualitative"]
    steps: list[Step] = Field(min_length=1)
    value: str | None = None
    unit: str | None = None
    rule: str
    weight: float = Field(default=1.0, ge=0.0)
    references: list[str] = Field(default_factory=list)
    overlay: list[str] = Field(default_factory=list)
    abnormal: str | None = None
    """The abnormal sign the rule detects, in words; the rule holding means "sign present"."""
    group: str | None = Field(default=None, pattern=_ID)
    """Indicators that come from one piece of evidence (vCDR and rim-to-disc from one
    segmentation) share one weight, ``decision.groups[group]``: the group counts once, and
    the members' own weights become their shares within it."""
    uncertain: Literal["half", "exclude", "absent"] = "exclude"
    """A qualitative answer of "uncertain": counts half (MedAgent-Pro's decider), is left out
    of the decision like an unavailable indicator (the default), or counts as "sign absent"."""


class Decision(_Strict):
    """How indicators combine.

    * ``weighted``: score = sum of weights of indicators with the sign present / sum of weights
      of the available ones (a group counts once with its weight in ``groups``, times the
      share-weighted mean of its available members; an uncertain
      answer per its policy); positive when score >= ``threshold``.
    * ``k_of_n``: positive when at least ``k`` available indicators pass.
    * ``all`` / ``any``: every / at least one available indicator passes.
    """

    method: Literal["weighted", "k_of_n", "all", "any"]
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    k: int | None = Field(default=None, ge=1)
    min_available: int = Field(default=1, ge=0)
    groups: dict[str, float] = Field(default_factory=dict)
    """The one weight each indicator group counts with (see ``Indicator.group``)."""
    min_coverage: float = Field(default=0.0, ge=0.0, le=1.0)
    """Below this share of the total weight available, the outcome is indeterminate (with the
    reason), never a confident negative."""

    @model_validator(mode="after")
    def _needs(self) -> Decision:
        if self.method == "weighted" and self.threshold is None:
            raise ValueError("decision 'weighted' needs a 'threshold' between 0 and 1")
        if self.method == "k_of_n" and self.k is None:
            raise ValueError("decision 'k_of_n' needs 'k'")
        return self


class Workflow(_Strict):
    """A diagnostic workflow. Read it with ``dxgraph.workflows.loader.load_workflow``."""

    id: str = Field(pattern=_ID)
    name: str
    version: str = "1"
    modality: str
    question: str
    description: str = ""
    outcomes: Outcomes
    references: list[Reference] = Field(default_factory=list)
    inputs: list[InputSlot] = Field(min_length=1)
    indicators: list[Indicator] = Field(min_length=1)
    decision: Decision
    calibration: dict[str, Any] | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) else v

    @field_validator("indicators")
    @classmethod
    def _unique_ids(cls, v: list[Indicator]) -> list[Indicator]:
        seen: set[str] = set()
        for ind in v:
            if ind.id in seen:
                raise ValueError(f"indicator id {ind.id!r} is used twice")
            seen.add(ind.id)
        return v

    @model_validator(mode="after")
    def _groups_have_weights(self) -> Workflow:
        named = {i.group for i in self.indicators if i.group}
        for g in sorted(named - set(self.decision.groups)):
            raise ValueError(f"indicator group {g!r} has no weight: add 'groups: {{{g}: WEIGHT}}' under 'decision'")
        for g in sorted(set(self.decision.groups) - named):
            raise ValueError(f"decision.groups names {g!r}, but no indicator has 'group: {g}'")
        return self
