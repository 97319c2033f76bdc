"""The tool agent: runs one indicator's steps and turns the result into evidence.

A recoverable failure (bad image, segmenter found nothing, no VLM configured) makes the
indicator ``unavailable`` with the reason; it never ends the run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dxgraph.agents.planner import PlanItem
from dxgraph.errors import ToolError
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.cache import Ref, file_digest
from dxgraph.tools.registry import get_tool
from dxgraph.tools.runner import ToolRunner, summarise
from dxgraph.types import IndicatorResult, ToolCallRecord
from dxgraph.workflows.rules import compile_rule

__all__ = ["run_indicator"]

_SCALAR = (bool, int, float, str)


def _input_refs(images: dict[str, str]) -> dict[str, Ref]:
    refs = {}
    for name, path in images.items():
        try:
            digest = "file:" + file_digest(path)
        except OSError:
            digest = "missing:" + path  # the loader reports it properly
        refs[name] = Ref(digest, path)
    return refs


async def run_indicator(item: PlanItem, images: dict[str, str], runner: ToolRunner,
                        overlay_dir: str | None = None) -> IndicatorResult:
    """Execute a plan item's steps and evaluate its rule."""
    start = time.perf_counter()
    scope: dict[str, Ref] = _input_refs(images)
    calls: list[ToolCallRecord] = []
    base = dict(id=item.indicator, description=item.description, kind=item.kind, unit=item.unit,
                rule=item.rule, weight=item.weight, abnormal=item.abnormal, group=item.group,
                uncertain=item.uncertain)
    try:
        for step in item.steps:
            spec = get_tool(step.tool)
            inputs = {param: scope[name] for param, name in step.inputs.items()}
            try:
                refs, record = await runner.call(spec, inputs, step.args)
            except ToolError as exc:
                calls.append(ToolCallRecord(tool=spec.name, version=spec.version, seconds=0.0, args=dict(step.args), error=str(exc)))
                raise
            calls.append(record)
            for out_name, local in step.outputs.items():
                scope[local] = refs[out_name]
        values: dict[str, Any] = {}
        for name, ref in scope.items():
            if name in images:
                continue
            if ref.loaded and isinstance(ref.value, _SCALAR + (type(None),)):
                values[name] = summarise(ref.value)
            elif not ref.loaded and name in compile_rule(item.rule).names | {item.value}:
                values[name] = summarise(ref.value)
        value = scope[item.value].value
        if not isinstance(value, _SCALAR):
            raise ToolError(f"indicator {item.indicator!r}: value {item.value!r} is a {type(value).__name__}, not a number or answer")
        passed = compile_rule(item.rule).evaluate(values)
        artifacts = {}
        if overlay_dir and item.overlay:
            artifacts = _overlay(item, scope, overlay_dir)
        rationale = values.get("rationale") if isinstance(values.get("rationale"), str) else None
        return IndicatorResult(**base, value=summarise(value), status="ok", passed=passed, values=values,
                               calls=calls, seconds=round(time.perf_counter() - start, 6),
                               rationale=rationale, artifacts=artifacts)
    except ToolError as exc:
        return IndicatorResult(**base, status="unavailable", error=str(exc), calls=calls,
                               seconds=round(time.perf_counter() - start, 6))
    except ValueError as exc:  # rule could not be evaluated on what the tools returned
        return IndicatorResult(**base, status="unavailable", error=str(exc), calls=calls,
                               seconds=round(time.perf_counter() - start, 6))


def _overlay(item: PlanItem, scope: dict[str, Ref], overlay_dir: str) -> dict[str, str]:
    from dxgraph.tools.measurement_overlay import render_measurement

    image = next((r.value for r in scope.values() if isinstance(r.value, Image)), None)
    masks = {n: scope[n].value for n in item.overlay if n in scope and isinstance(scope[n].value, Mask)}
    if image is None or not masks:
        return {}
    path = Path(overlay_dir) / f"{item.indicator}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_measurement(image, masks, path)
    return {"overlay": str(path)}
