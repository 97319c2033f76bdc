"""Run a workflow on images: the Python API behind ``dxgraph diagnose``.

>>> dx = diagnose("glaucoma", ["sample:retina"])      # doctest: +SKIP
>>> dx.outcome, [(i.id, i.value) for i in dx.indicators]  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from dxgraph.agents.planner import Plan, compile_plan
from dxgraph.errors import InputError
from dxgraph.telemetry import get_tracer
from dxgraph.tools.cache import ToolCache
from dxgraph.tools.registry import ToolContext
from dxgraph.tools.runner import ToolRunner
from dxgraph.types import Diagnosis
from dxgraph.agents.graph import DxContext, build_graph
from dxgraph.workflows.loader import find_workflow
from dxgraph.workflows.schema import Workflow

__all__ = ["run_workflow", "diagnose", "default_runner", "bind_images", "check_images"]


@lru_cache(maxsize=1)
def _graph():
    return build_graph()


_runners: dict[str, ToolRunner] = {}


def default_runner(settings=None, models: dict[str, Any] | None = None) -> ToolRunner:
    """One runner per cache directory per process, with the configured models."""
    from dxgraph.config import load_settings

    settings = settings or load_settings()
    key = str(settings.cache_dir)
    runner = _runners.get(key)
    if runner is None:
        from dxgraph.tools.remote import RemoteTools

        runner = ToolRunner(ToolCache(settings.cache_dir), ToolContext(settings=settings),
                            remote=RemoteTools.from_settings(settings))
        _runners[key] = runner
    if models:
        runner.context.models.update(models)
    elif "vlm" not in runner.context.models:
        from dxgraph.models.roles import for_role

        runner.context.models["vlm"] = for_role(settings, "vlm")
    return runner


def _as_images(images) -> list[str] | dict[str, str]:
    # A lone path is one image, not a sequence of one-character paths.
    if isinstance(images, (str, os.PathLike)):
        return [os.fspath(images)]
    if isinstance(images, dict):
        return {k: os.fspath(v) for k, v in images.items()}
    return [os.fspath(v) for v in images]


def bind_images(wf: Workflow, images: str | os.PathLike | list[str] | dict[str, str]) -> dict[str, str]:
    """Match the given image paths to the workflow's input slots; resolve ``sample:`` names.

    Raises:
        InputError: the wrong number of images, an unknown input name, or a file that does
            not exist (checked here so that a typo is an error, not an indeterminate run).
    """
    images = _as_images(images)
    names = [s.name for s in wf.inputs]
    if isinstance(images, dict):
        unknown = sorted(set(images) - set(names))
        if unknown:
            raise InputError(f"workflow {wf.id!r} has no input {unknown[0]!r}; its inputs are {names}")
        bound = dict(images)
    else:
        if len(images) != len(names):
            raise InputError(
                f"workflow {wf.id!r} needs {len(names)} image(s) ({', '.join(names)}), got {len(images)}: "
                f"pass --image once per input, in that order"
            )
        bound = dict(zip(names, images))
    missing = [n for n in names if n not in bound]
    if missing:
        raise InputError(f"workflow {wf.id!r} needs image {missing[0]!r}")
    resolved = {k: _resolve(v) for k, v in bound.items()}
    for name, path in resolved.items():
        if not Path(path).exists():
            raise InputError(f"image {path!r} (input {name!r} of workflow {wf.id!r}) does not exist; check the path "
                             "(or use sample:retina, sample:ct...)")
    return resolved


def _resolve(path: str) -> str:
    if str(path).startswith("sample:"):
        from dxgraph.tools.imaging import resolve_image_path

        return str(resolve_image_path(path))
    return str(path)


def _expects(wf: Workflow, slot) -> list[str]:
    """What each step that loads ``slot`` expects of it, beside the slot's own ``dims``."""
    wanted = [slot.dims]
    for ind in wf.indicators:
        for step in ind.steps:
            expect = step.args.get("expect")
            if step.tool == "load_image" and step.inputs.get("path") == slot.name and isinstance(expect, str):
                wanted.append(expect)
    specific = [e for e in dict.fromkeys(wanted) if e != "any"]
    return specific or ["any"]


def _refuse_identical(wf: Workflow, bound: dict[str, str]) -> None:
    # ED and ES (or any two inputs) given the same bytes would be measured as "no change":
    # an EF of 0 % read as a confident HFrEF.
    from dxgraph.tools.cache import file_digest

    seen: dict[str, str] = {}
    for name, path in bound.items():
        digest = file_digest(path)
        if digest in seen:
            first = seen[digest]
            raise InputError(
                f"{first.upper()} and {name.upper()} are the same image (identical content: {bound[first]!r}"
                f"{'' if bound[first] == path else f' and {path!r}'}); workflow {wf.id!r} needs a different "
                f"image for each of its inputs ({', '.join(bound)})"
            )
        seen[digest] = name


def check_images(workflow: str | Workflow, images: str | os.PathLike | list[str] | dict[str, str]) -> dict[str, str]:
    """Load each image as its input slot and steps expect; raise InputError naming the first bad one.

    Inside a run a bad image only makes its indicators unavailable; callers that talk to a
    person (CLI, UI) check first so the person gets the reason at once. Two inputs with the
    same content are refused too.
    """
    from dxgraph.tools.imaging import load

    wf = workflow if isinstance(workflow, Workflow) else find_workflow(workflow)[0]
    bound = bind_images(wf, images)
    slots = {s.name: s for s in wf.inputs}
    for name, path in bound.items():
        for expect in _expects(wf, slots[name]):
            image = load(path, expect=expect)
        if slots[name].needs_spacing and not image.spacing:
            raise InputError(
                f"image {path!r} has no pixel/voxel spacing in its header, and workflow {wf.id!r} measures "
                f"in mm/mL: export it as NIfTI or DICOM with spacing"
            )
    if len(bound) > 1:
        _refuse_identical(wf, bound)
    return bound


async def run_workflow(workflow: str | Workflow, images: str | os.PathLike | list[str] | dict[str, str], *,
                       runner: ToolRunner | None = None, narrator=None, overlay_dir: str | Path | None = None,
                       store=None, on_indicator=None) -> Diagnosis:
    """Run a workflow (id, path or object) on images and return its Diagnosis.

    Args:
        workflow: a built-in id such as ``"glaucoma"``, a YAML path, or a Workflow.
        images: paths (or ``sample:NAME``) in the order of the workflow's inputs, a
            mapping from input name to path, or one path for a one-input workflow.
        runner: the tool runner (default: one per process with the disk cache).
        narrator: a ChatModel that writes the narrative; None for no narrative.
        overlay_dir: where to write segmentation overlays (PNG), if wanted.
        store: a Store to persist the diagnosis and its tool calls in.
        on_indicator: called with each IndicatorResult as soon as its branch finishes.

    Raises:
        InputError: the images do not fit the workflow's inputs, or a file does not exist.
    """
    wf = workflow if isinstance(workflow, Workflow) else find_workflow(workflow)[0]
    plan: Plan = compile_plan(wf)
    bound = bind_images(wf, images)
    runner = runner or default_runner()
    ctx = DxContext(runner=runner, narrator=narrator, overlay_dir=str(overlay_dir) if overlay_dir else None,
                    on_indicator=on_indicator)
    with get_tracer().start_as_current_span(f"workflow {wf.id}") as span:
        span.set_attribute("dxgraph.workflow", wf.id)
        span.set_attribute("dxgraph.workflow.version", wf.version)
        state = await _graph().ainvoke({"plan": plan.model_dump(mode="json"), "images": bound, "results": []},
                                       context=ctx, config={"recursion_limit": 25})
    dx = Diagnosis.model_validate(state["diagnosis"])
    if store is not None:
        store.save_diagnosis(dx)
    return dx


def diagnose(workflow: str | Workflow, images: str | os.PathLike | list[str] | dict[str, str], **kwargs) -> Diagnosis:
    """Synchronous ``run_workflow`` for scripts and notebooks: ``diagnose("glaucoma", "retina.png")``."""
    return asyncio.run(run_workflow(workflow, images, **kwargs))
