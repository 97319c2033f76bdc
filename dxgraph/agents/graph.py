"""The diagnostic graph: plan -> one ``Send`` per indicator -> tool agent -> assess.

State is plain data (paths, plan, results as dicts). The tool runner, the narrator model
and output options come through langgraph's run context (``context_schema``), so the graph
can be checkpointed and the state shown or stored as JSON.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from dxgraph.agents.assessor import assess, narrate
from dxgraph.agents.planner import Plan, PlanItem
from dxgraph.agents.tool_agent import run_indicator
from dxgraph.telemetry import current_trace_id, get_tracer
from dxgraph.tools.runner import ToolRunner
from dxgraph.types import IndicatorResult

__all__ = ["DxState", "DxContext", "build_graph"]


class DxState(TypedDict, total=False):
    plan: dict[str, Any]
    images: dict[str, str]
    results: Annotated[list[dict[str, Any]], operator.add]
    diagnosis: dict[str, Any]
    started: float


class IndicatorTask(TypedDict):
    item: dict[str, Any]
    images: dict[str, str]


@dataclass
class DxContext:
    runner: ToolRunner
    narrator: Any = None
    overlay_dir: str | None = None
    # Called with each IndicatorResult as its branch finishes (the UI streams evidence).
    on_indicator: Callable[[IndicatorResult], None] | None = None


async def _plan(state: DxState) -> dict[str, Any]:
    with get_tracer().start_as_current_span("node plan") as span:
        span.set_attribute("dxgraph.workflow", state["plan"]["workflow"])
        span.set_attribute("dxgraph.indicators", len(state["plan"]["items"]))
        return {"started": time.perf_counter()}


def _fan_out(state: DxState) -> list[Send]:
    return [Send("indicator", {"item": item, "images": state["images"]}) for item in state["plan"]["items"]]


async def _indicator(task: IndicatorTask, runtime: Runtime[DxContext]) -> dict[str, Any]:
    item = PlanItem.model_validate(task["item"])
    with get_tracer().start_as_current_span(f"node indicator {item.indicator}") as span:
        span.set_attribute("dxgraph.indicator", item.indicator)
        result = await run_indicator(item, task["images"], runtime.context.runner, runtime.context.overlay_dir)
        span.set_attribute("dxgraph.indicator.status", result.status)
        if runtime.context.on_indicator is not None:
            runtime.context.on_indicator(result)
        return {"results": [result.model_dump(mode="json")]}


async def _assess(state: DxState, runtime: Runtime[DxContext]) -> dict[str, Any]:
    with get_tracer().start_as_current_span("node assess") as span:
        plan = Plan.model_validate(state["plan"])
        results = [IndicatorResult.model_validate(r) for r in state.get("results", [])]
        dx = assess(plan, results, seconds=time.perf_counter() - state.get("started", time.perf_counter()),
                    trace_id=current_trace_id())
        if runtime.context.narrator is not None:
            try:
                dx = dx.model_copy(update={"narrative": await narrate(dx, plan, runtime.context.narrator)})
            except Exception as exc:  # the narrative is optional; its failure is recorded, not fatal
                dx = dx.model_copy(update={"note": (dx.note + "; " if dx.note else "") + f"narrative unavailable: {exc}"})
        span.set_attribute("dxgraph.outcome", dx.outcome)
        return {"diagnosis": dx.model_dump(mode="json")}


def build_graph():
    """The compiled diagnostic graph (build once, invoke many times)."""
    g = StateGraph(DxState, context_schema=DxContext)
    g.add_node("plan", _plan)
    g.add_node("indicator", _indicator)
    g.add_node("assess", _assess)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", _fan_out, ["indicator"])
    g.add_edge("indicator", "assess")
    g.add_edge("assess", END)
    return g.compile()
