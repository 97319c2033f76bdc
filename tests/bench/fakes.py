"""A harness with known answers and injectable failures, to test the runner on its own.

It plays no agents: each consultation sleeps ``delay`` seconds and answers correctly for
even-numbered cases, so tests can check what the runner stores, skips and retries.
"""

from __future__ import annotations

import asyncio

from dxgraph.bench.grid import GridSample
from dxgraph.errors import ModelError, ModelUnavailable
from dxgraph.bench.judge import JudgeResult
from dxgraph.bench.record import SampleResult, TokenUsage
from dxgraph.types import Case, Fact, FinalDiagnosis, Turn

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

    async def consult(self, sample: GridSample) -> tuple[SampleResult, list[Turn]]:
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
        right = answer == sample.case.diagnosis
        result = SampleResult(
            truth=sample.case.diagnosis, synthetic=True, final=FinalDiagnosis(label=answer, confidence=0.8),
            judge=JudgeResult(correct=right, top3_correct=right, predicted_label=answer,
                              true_label=sample.case.diagnosis, match="table", rubric={"empathy": 1}, judge="fake"),
            disclosed={"f0": 1}, facts_elicited=0.25, n_facts=4, turns=2, messages=5,
            tokens=TokenUsage(input=10, output=5), seconds=self.delay)
        turns = [Turn(index=0, role="patient", text="a rash"), Turn(index=1, role="doctor", text="where?"),
                 Turn(index=2, role="patient", text="arm", revealed_facts=["f0"])]
        return result, turns

    async def aclose(self) -> None:
        self.closed = True


def consultation_reply(messages, *, questions: int = 2, label: str = "acne") -> dict:
    """A valid structured reply for the LLM doctor or the LLM patient, told apart by the
    system prompt: the doctor asks ``questions`` questions, then concludes ``label``."""
    system_text = messages[0].text if messages else ""
    if system_text.startswith("You are a patient"):
        last = messages[-1].text
        return {"reply": "It started a week ago and itches.", "revealed_fact_ids": [],
                "end_consultation": "My conclusion" in last}
    asked = sum(1 for m in messages if m.role == "assistant")
    if asked < questions and "consultation time is over" not in messages[-1].text:
        return {"question": f"Question {asked + 1}: when did it start?"}
    return {"final": {"label": label, "confidence": 0.6, "differential": [], "basis": "papules and comedones on the face"}}


class FlakyModel:
    """A ChatModel that, while ``healthy`` is False, fails a share of calls: raises a model
    error, hangs, or answers malformed JSON (the doctor repairs, then gives up)."""

    system_name = "flaky"

    def __init__(self, *, fail_rate: float = 0.3, seed: int = 0):
        import random

        from dxgraph.models.scripted import ScriptedModel

        self.spec = self.name = "flaky"
        self.healthy = False
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)
        self._inner = ScriptedModel(lambda m: self._reply(m))
        self.modes: list[str] = []

    def _reply(self, messages):
        return consultation_reply(messages)

    async def generate(self, messages, *, config=None, schema=None):
        mode = "ok"
        if not self.healthy and self._rng.random() < self.fail_rate:
            mode = ("error", "hang", "malformed")[self._rng.randrange(3)]
        self.modes.append(mode)
        if mode == "error":
            raise ModelUnavailable("endpoint 'flaky' failed after 4 attempts: HTTP 503")
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "malformed":
            from dxgraph.models.scripted import ScriptedModel

            return await ScriptedModel(['{"question": "unterminated']).generate(messages, config=config,
                                                                                schema=schema)
        return await self._inner.generate(messages, config=config, schema=schema)

    async def aclose(self) -> None:
        return None
