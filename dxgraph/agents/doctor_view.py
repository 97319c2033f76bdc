"""What a doctor may see of a case, per strategy.

Strategies are the conditions of 3MDBench plus ours:

=========================  ================================================================
``single``                 complaint (+ photo) -> one final answer, no dialogue
``dialogue``               questions and answers, text only
``dialogue+image``         as above, and the photo: attached for a vision model, otherwise
                           its description (``visual_findings``) stands in for it
``dialogue+image+tools``   as above, and the evidence of the diagnostic workflow (or of the
                           VLM tool on the photo) gathered before the first question
=========================  ================================================================

A doctor never sees the ``Case``: it gets a ``CaseView`` that has no diagnosis and no
differential, so no code path can leak the ground truth into a prompt.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dxgraph.types import Case, ImageRef, opaque_case_id

__all__ = ["Strategy", "STRATEGIES", "CaseView"]

Strategy = Literal["single", "dialogue", "dialogue+image", "dialogue+image+tools"]
STRATEGIES: tuple[str, ...] = ("single", "dialogue", "dialogue+image", "dialogue+image+tools")


class CaseView(BaseModel):
    """The part of a case a doctor may see under a strategy (never the label)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    case_id: str
    strategy: Strategy = "dialogue"
    age: int | None = None
    sex: str | None = None
    chief_complaint: str
    visual_findings: str = ""
    images: list[ImageRef] = Field(default_factory=list)
    workflow: str | None = None

    @property
    def sees_image(self) -> bool:
        return self.strategy != "dialogue"

    @property
    def uses_tools(self) -> bool:
        return self.strategy == "dialogue+image+tools"

    @classmethod
    def from_case(cls, case: Case, strategy: str = "dialogue") -> CaseView:
        """Copy the visible fields; the photo only where the strategy shows it."""
        if strategy not in STRATEGIES:
            from dxgraph.errors import ConfigError

            raise ConfigError(f"unknown doctor strategy {strategy!r}; use one of {list(STRATEGIES)}")
        image = strategy != "dialogue"
        return cls(
            case_id=opaque_case_id(case.id),
            strategy=strategy,
            age=case.age,
            sex=case.sex,
            chief_complaint=case.chief_complaint,
            visual_findings=case.visual_findings if image else "",
            images=list(case.images) if image else [],
            workflow=case.workflow if strategy == "dialogue+image+tools" else None,
        )
