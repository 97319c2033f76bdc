"""The one typed record of a finished dialogue sample.

``SampleResult`` is written by the benchmark (and the demo's Simulate tab) with
``model_dump_json`` and read back with ``from_json`` by metrics, reports and the demo, so
nothing downstream reads a result by string keys: renaming a field is a type error, not a
silently wrong accuracy. Rows written before this record existed have the same field names
and load unchanged.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dxgraph.bench.judge import JudgeResult
from dxgraph.types import Case, Disclosure, FinalDiagnosis

__all__ = ["SampleResult", "TokenUsage"]


class TokenUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: int = 0
    output: int = 0


class SampleResult(BaseModel):
    """One consultation's outcome as stored: the answer, the verdict, what was disclosed, costs.

    ``truth`` is the case's label, kept for scoring only (no agent reads the store).
    """

    model_config = ConfigDict(extra="forbid")

    truth: str
    synthetic: bool = True
    final: FinalDiagnosis
    judge: JudgeResult | None = None
    judge_error: str | None = Field(
        default=None, description="why the run's judge could not score the stored dialogue (`bench judge RUN_ID` fills it)")
    judges: dict[str, JudgeResult] = Field(
        default_factory=dict, description="further judges' verdicts by name (`dxgraph bench judge`), never overwritten")
    disclosed: dict[str, int] = Field(default_factory=dict)
    facts_elicited: float = 0.0
    n_facts: int = 0
    turns: int = Field(default=0, description="doctor turns")
    messages: int = Field(default=0, description="messages in the transcript, all roles")
    ended_by: str = ""
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    seconds: float = 0.0
    disclosures: list[Disclosure] = Field(
        default_factory=list, description="the patient's disclosure record, one per reply (rows before it: [])")

    @classmethod
    def from_consultation(cls, case: Case, res) -> SampleResult:
        """The record of a finished ``bench.dialogue.ConsultationResult``."""
        return cls(
            truth=case.diagnosis, synthetic=case.synthetic, final=res.final, judge=res.judge,
            disclosed=dict(res.disclosed), facts_elicited=res.facts_elicited, n_facts=len(case.facts),
            turns=res.doctor_turns, messages=len(res.turns), ended_by=res.ended_by,
            tokens=TokenUsage(input=res.input_tokens, output=res.output_tokens), seconds=res.seconds,
            disclosures=[t.disclosure for t in res.turns if t.role == "patient" and t.disclosure is not None],
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SampleResult:
        return cls.model_validate_json(text)
