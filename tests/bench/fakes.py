"""A harness with known answers and injectable failures, to test the runner on its own.

It plays no agents: each consultation sleeps ``delay`` seconds and answers correctly for
even-numbered cases, so tests can check what the runner stores, skips and retries.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dxgraph.bench.grid import GridSample
from dxgraph.errors import ModelError
from dxgraph.types import Case, Fact, Turn

TEMPS = ["neutral", "sanguine", "choleric", "melancholic", "phlegmatic"]


def make_cases(n: int) -> list[Case]:
    labels = ["acne", "psoriasis", "eczema"]
    return [Case(id=f"case{i:03d}", chief_complaint="a rash", diagnosis=labels[i % 3],
                 facts=[Fact(id=f"f{j}", text=f"fact {j}") for j in range(4)]) for i in range(n)]


class FakeHarness:
    def __init__(self, n_cases: int = 4, *, delay: float = 0.0, fail: dict[str, str] | None = None,
                 temperaments: list[str] | None = None):
        self.cases = make_cases(n_cases)
        self.delay = delay
        self.fail = dict(fail or {})  # key -> "model" | "bug" | "hang"
        self.temps = temperaments or TEMPS
        self.calls: list[str] = []
        self.closed = False

    def load_cases(self) -> list[Case]:
        return list(self.cases)

    def temperaments(self) -> list[str]:
        return list(self.temps)

    async def consult(self, sample: GridSample) -> tuple[dict[str, Any], list[Turn]]:
        self.calls.append(sample.key)
        mode = self.fail.get(sample.key)
        if mode == "hang":
            await asyncio.sleep(3600)
        await asyncio.sleep(self.delay)
        if mode == "model":
            raise ModelError("endpoint 'stub' failed after 4 attempts: HTTP 500")
        if mode == "bug":
            raise KeyError("missing")
        idx = int(sample.case.id[4:])
        answer = sample.case.diagnosis if idx % 2 == 0 else "rosacea"
        result = {"truth": sample.case.diagnosis, "synthetic": True,
                  "final": {"label": answer, "confidence": 0.8, "differential": [], "basis": ""},
                  "judge": {"correct": answer == sample.case.diagnosis, "top3_correct": answer == sample.case.diagnosis,
                            "predicted_label": answer, "rubric": {"empathy": 1}},
                  "disclosed": ["f0"], "facts_elicited": 0.25, "n_facts": 4, "turns": 2, "messages": 5,
                  "tokens": {"input": 10, "output": 5}, "seconds": self.delay}
        turns = [Turn(index=0, role="patient", text="a rash"), Turn(index=1, role="doctor", text="where?"),
                 Turn(index=2, role="patient", text="arm", revealed_facts=["f0"])]
        return result, turns

    async def aclose(self) -> None:
        self.closed = True
