"""The planner: turns a workflow's criteria into an executable plan.

A YAML workflow compiles deterministically: each indicator becomes a plan item whose steps
are in dependency order, pinned to the registered tool versions. The plan is plain data,
so it sits in graph state, is shown to the user before anything runs, and is stored with
the diagnosis. (LLM drafting of new workflows lives in ``workflows/draft.py``: a draft
must validate as a workflow before it can become a plan.)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dxgraph.tools.registry import registry
from dxgraph.workflows.loader import ordered_steps, step_outputs
from dxgraph.workflows.schema import Decision, Outcomes, Workflow

__all__ = ["PlannedStep", "PlanItem", "Plan", "compile_plan"]


class PlannedStep(BaseModel):
    model_config = ConfigDict(frozen=True)
    tool: str
    version: str
    inputs: dict[str, str] = Field(default_factory=dict)
    args: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)


class PlanItem(BaseModel):
    model_config = ConfigDict(frozen=True)
    indicator: str
    description: str
    kind: str
    steps: list[PlannedStep]
    value: str
    unit: str | None = None
    rule: str
    weight: float = 1.0
    overlay: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    abnormal: str | None = None
    group: str | None = None
    uncertain: str = "exclude"


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)
    workflow: str
    version: str
    question: str
    inputs: list[str]
    items: list[PlanItem]
    decision: Decision
    outcomes: Outcomes

    def describe(self) -> str:
        """A short human-readable plan, one line per step."""
        lines = [f"{self.workflow} v{self.version}: {self.question}"]
        for item in self.items:
            lines.append(f"- {item.indicator} ({item.kind}, weight {item.weight:g}): rule {item.rule}")
            for s in item.steps:
                ins = ", ".join(f"{k}={v}" for k, v in s.inputs.items())
                lines.append(f"    {s.tool} v{s.version}({ins}) -> {', '.join(s.outputs.values())}")
        return "\n".join(lines)


def compile_plan(wf: Workflow) -> Plan:
    """Compile a validated workflow into a plan (no model involved)."""
    tools = registry()
    inputs = {s.name for s in wf.inputs}
    items = []
    for ind in wf.indicators:
        def outs(step):
            return step_outputs(step, tools[step.tool].outputs)

        order = ordered_steps(ind, inputs, outs)
        steps = [
            PlannedStep(tool=ind.steps[i].tool, version=tools[ind.steps[i].tool].version,
                        inputs=dict(ind.steps[i].inputs), args=dict(ind.steps[i].args),
                        outputs=outs(ind.steps[i]))
            for i in order
        ]
        value = ind.value or next(iter(outs(ind.steps[-1]).values()))
        items.append(PlanItem(indicator=ind.id, description=ind.description, kind=ind.kind, steps=steps,
                              value=value, unit=ind.unit, rule=ind.rule, weight=ind.weight,
                              overlay=list(ind.overlay), references=list(ind.references),
                              abnormal=ind.abnormal, group=ind.group, uncertain=ind.uncertain))
    return Plan(workflow=wf.id, version=wf.version, question=wf.question, inputs=sorted(inputs),
                items=items, decision=wf.decision, outcomes=wf.outcomes)
