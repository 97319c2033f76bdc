"""sqlmodel tables: runs, samples, dialogue turns, tool calls and diagnoses.

A sample is unique by ``(run_id, key)``: the database itself refuses a second copy, so
many workers (threads, processes, hosts on one Postgres) can share a run without ever
storing a sample twice.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["RunRow", "SampleRow", "TurnRow", "ToolCallRow", "DiagnosisRow", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    id: str = Field(primary_key=True)
    kind: str = Field(default="dialogue", index=True)
    status: str = Field(default="running")
    config_json: str = Field(default="{}", sa_column=Column(Text))
    samples_total: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SampleRow(SQLModel, table=True):
    __tablename__ = "samples"
    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_sample_run_key"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, foreign_key="runs.id")
    key: str = Field(index=True)
    case_id: str = ""
    temperament: str = ""
    strategy: str = ""
    doctor: str = ""
    status: str = Field(default="done", index=True)  # done | error
    error: str | None = Field(default=None, sa_column=Column(Text))
    result_json: str = Field(default="{}", sa_column=Column(Text))
    attempts: int = 1
    seconds: float = 0.0
    worker: str = ""
    finished_at: datetime = Field(default_factory=utcnow)


class TurnRow(SQLModel, table=True):
    __tablename__ = "turns"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    sample_key: str = Field(index=True)
    index: int
    role: str
    text: str = Field(default="", sa_column=Column(Text))
    revealed_json: str = "[]"
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


class ToolCallRow(SQLModel, table=True):
    __tablename__ = "tool_calls"
    id: int | None = Field(default=None, primary_key=True)
    diagnosis_id: int | None = Field(default=None, index=True, foreign_key="diagnoses.id")
    indicator: str = ""
    tool: str
    version: str
    seconds: float = 0.0
    cached: bool = False
    error: str | None = Field(default=None, sa_column=Column(Text))
    outputs_json: str = Field(default="{}", sa_column=Column(Text))


class DiagnosisRow(SQLModel, table=True):
    __tablename__ = "diagnoses"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str | None = Field(default=None, index=True)
    sample_key: str | None = None
    workflow: str = Field(index=True)
    workflow_version: str = "1"
    outcome: str
    score: float | None = None
    trace_id: str | None = None
    result_json: str = Field(default="{}", sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
