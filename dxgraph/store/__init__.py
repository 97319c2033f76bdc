"""Persistence of runs, samples, turns, tool calls and diagnoses (sqlmodel)."""

from dxgraph.store.db import Store, get_engine, open_store
from dxgraph.store.tables import DiagnosisRow, RunRow, SampleRow, ToolCallRow, TurnRow

__all__ = ["Store", "get_engine", "open_store", "RunRow", "SampleRow", "TurnRow", "ToolCallRow", "DiagnosisRow"]
