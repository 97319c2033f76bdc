"""Shared value types.

Everything here is plain, serialisable data (pydantic models) so it can sit in langgraph
state, go into the store as JSON and come back out unchanged. Arrays, clients and images
never live here: tools pass those among themselves inside one indicator's run.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

__all__ = [
    "ImageRef",
    "Fact",
    "Case",
    "ToolCallRecord",
    "IndicatorResult",
    "Diagnosis",
    "FinalDiagnosis",
    "Turn",
    "Disclosure",
    "Scalar",
    "opaque_case_id",
]

# A secret per process unless pinned (DXGRAPH_CASE_SALT, to join traces of several processes):
# an agent that learned the mapping in one run cannot reuse it in the next.
_CASE_SALT = os.environ.get("DXGRAPH_CASE_SALT") or secrets.token_hex(16)


def opaque_case_id(case_id: str, salt: str | None = None) -> str:
    """The id an agent or a trace sees for a case: a salted hash, never the case file's id.

    Case ids are often named after their label (``eczema-03``, 3MDBench's file names), so a
    doctor shown the real id could read off the answer.
    """
    digest = hashlib.sha256(f"{salt or _CASE_SALT}|{case_id}".encode()).hexdigest()
    return f"case-{digest[:12]}"

Scalar = float | int | str | bool | None


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageRef(_Frozen):
    """A pointer to an image: a file path, or ``sample:NAME`` for a shipped sample."""

    path: str
    modality: str | None = None
    description: str = ""


FactCategory = Literal[
    "symptom", "onset", "location", "history", "medication", "exposure", "treatment", "other"
]


class Fact(_Frozen):
    """One atomic thing the patient knows and may disclose, with a stable id."""

    id: str
    category: FactCategory = "other"
    text: str


class Case(_Frozen):
    """A clinical vignette for the dialogue benchmark.

    ``diagnosis`` and ``differential`` are the ground truth: they are read by the judge and
    never shown to a doctor agent, a tool or a tool prompt.
    """

    id: str
    age: int | None = None
    sex: Literal["female", "male", "other"] | None = None
    chief_complaint: str
    facts: list[Fact] = Field(default_factory=list)
    visual_findings: str = ""
    images: list[ImageRef] = Field(default_factory=list)
    diagnosis: str
    differential: list[str] = Field(default_factory=list)
    split: Literal["train", "test"] = "test"
    workflow: str | None = None
    source: str = "synthetic"
    synthetic: bool = True
    personality: str | None = None


class ToolCallRecord(_Frozen):
    """One tool invocation inside an indicator: what ran, how long, what it returned."""

    tool: str
    version: str
    seconds: float
    cached: bool = False
    args: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Scalar] = Field(default_factory=dict)
    error: str | None = None


class IndicatorResult(_Frozen):
    """The evidence for one criterion of a workflow."""

    id: str
    description: str = ""
    kind: Literal["quantitative", "qualitative"]
    value: Scalar = None
    unit: str | None = None
    rule: str | None = None
    status: Literal["ok", "unavailable"]
    passed: bool | None = None
    weight: float = 1.0
    error: str | None = None
    values: dict[str, Scalar] = Field(default_factory=dict)
    calls: list[ToolCallRecord] = Field(default_factory=list)
    seconds: float = 0.0
    rationale: str | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)
    abnormal: str | None = None  # the sign the rule detects, in words ("cup enlarged: vCDR 0.6 or more")
    group: str | None = None  # indicators of one group (one segmentation) share one weight
    uncertain: Literal["half", "exclude", "absent"] = "exclude"

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        # ``finding`` is written to JSON for readers but always recomputed on the way back in
        if isinstance(data, dict) and "finding" in data:
            data = {k: v for k, v in data.items() if k != "finding"}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def finding(self) -> Literal["sign present", "sign absent", "uncertain", "unavailable"]:
        """What the evidence says, in the words a reader needs: a rule states the abnormal sign,
        so a rule that holds means the sign is present (never "pass")."""
        if self.status != "ok":
            return "unavailable"
        if isinstance(self.value, str) and self.value.strip().lower() == "uncertain":
            return "uncertain"
        if self.passed is None:
            return "unavailable"
        return "sign present" if self.passed else "sign absent"


class Diagnosis(_Frozen):
    """What a diagnostic workflow concludes, with every number it rests on."""

    workflow: str
    workflow_version: str = "1"
    outcome: str
    score: float | None = None
    probability: float | None = None
    threshold: float | None = None
    decision: str = ""
    indicators: list[IndicatorResult] = Field(default_factory=list)
    note: str = ""
    narrative: str | None = None
    seconds: float = 0.0
    trace_id: str | None = None
    coverage: float | None = None  # share of the decision's weight that was available

    @property
    def available(self) -> list[IndicatorResult]:
        return [i for i in self.indicators if i.status == "ok"]


class FinalDiagnosis(_Frozen):
    """A doctor agent's structured conclusion of a consultation. ``label=None`` abstains."""

    label: str | None = None
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    differential: list[str] = Field(default_factory=list)
    basis: str = ""
    # Set when the conclusion is a workflow's outcome resting on an evidence score, which is
    # not a probability: how that score reads ("evidence score 1.00, threshold 0.5; ..."),
    # shown instead of a confidence percentage.
    evidence: str | None = None


class Disclosure(_Frozen):
    """What a simulated patient's turn carried: the record the judge and the fidelity report read.

    Fact ids keep their identity through a severity transformation, so the judge still knows
    what was disclosed; distractors and digressions carry no fact and are never counted as one.
    """

    asked: list[str] = Field(default_factory=list, description="fact ids told because a question matched them")
    direct: list[str] = Field(default_factory=list, description="of those, the ones a question asked about directly")
    volunteered: list[str] = Field(default_factory=list, description="fact ids told unasked")
    withheld: list[str] = Field(default_factory=list, description="matched fact ids the policy kept back")
    severity: dict[str, Literal["minimised", "amplified"]] = Field(default_factory=dict)
    distractors: list[str] = Field(default_factory=list, description="feared symptoms the case does not have")
    digressions: int = 0
    words: int = 0
    end_request: bool = False
    label_leaks: list[str] = Field(default_factory=list, description="labels the reply named (LLM patient)")


class Turn(_Frozen):
    """One utterance in a consultation, with its cost."""

    index: int
    role: Literal["doctor", "patient", "tool", "system"]
    text: str
    revealed_facts: list[str] = Field(default_factory=list)
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    tool: str | None = None
    end: bool = False
    disclosure: Disclosure | None = None
