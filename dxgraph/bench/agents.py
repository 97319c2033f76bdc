"""One builder of the consultation's agents (doctor, patient, judge), shared by the benchmark
harness, the demo and the CLI.

Each method takes a spec (``rules`` or a model spec), or None for the role's configured
model (the demo's way); a role served by no model gets its rule baseline.
"""

from __future__ import annotations

from typing import Any

from dxgraph.models import ChatModel
from dxgraph.models.roles import ModelPool

__all__ = ["AgentFactory"]


class AgentFactory:
    """Doctors, patients and judges from specs.

    Args:
        pool: where chat models come from (built once per spec).
        cases: the case set whose train split is the rule doctor's knowledge base
            (``BenchConfig.knowledge_source()`` in a benchmark).
    """

    def __init__(self, pool: ModelPool | None = None, *, cases: str = "bundled"):
        self.pool = pool or ModelPool()
        self.cases = cases
        self._doctors: dict[tuple[str, str], Any] = {}

    def _model(self, spec: str | None, role: str) -> ChatModel | None:
        if spec is None:
            return self.pool.for_role(role)
        return None if spec == "rules" else self.pool.get(spec)

    def doctor(self, spec: str | None, strategy: str, *, tools: Any = None, vision: bool | None = None):
        """The doctor for a strategy. Doctors are stateless (each act gets the whole
        transcript), so one per (spec, strategy) is shared when no tools are given.

        ``vision`` defaults to whether the doctor's model is also the configured VLM.
        """
        key = (spec or "", strategy)
        shared = tools is None and vision is None and spec is not None
        if shared and key in self._doctors:
            return self._doctors[key]
        model = self._model(spec, "doctor")
        # dialogue+hints: a doctor that reads a classifier's labels from its view (agents/hints.py)
        hinted = strategy == "dialogue+hints"
        if model is None:
            from dxgraph.agents.baselines import RuleDoctor
            from dxgraph.agents.hints import HintedRuleDoctor

            doctor = (HintedRuleDoctor if hinted else RuleDoctor).from_train_split(
                self.cases, strategy=strategy, **({"tools": tools} if tools is not None else {}))
        else:
            from dxgraph.agents.doctor import LLMDoctor
            from dxgraph.agents.hints import HintedLLMDoctor

            if vision is None:
                vision = spec is None and self.pool.spec("vlm") == self.pool.spec("doctor")
            doctor = (HintedLLMDoctor if hinted else LLMDoctor)(model, strategy=strategy, vision=vision, tools=tools)
        if shared:
            self._doctors[key] = doctor
        return doctor

    def patient(self, spec: str | None):
        """A fresh patient (it holds one consultation's state)."""
        from dxgraph.simulator.patient import RulePatient
        from dxgraph.simulator.patient_llm import LLMPatient

        model = self._model(spec, "patient")
        return RulePatient() if model is None else LLMPatient(model)

    def judge(self, spec: str | None):
        from dxgraph.bench.judge import LLMJudge, RuleJudge

        model = self._model(spec, "judge")
        return RuleJudge() if model is None else LLMJudge(model)

    async def aclose(self) -> None:
        await self.pool.aclose()
