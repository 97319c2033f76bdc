"""The Workflow tab: pick a built-in workflow or upload a YAML file, run it on an image,
read the plan, the per-indicator evidence, the overlays, the timings and the trace id."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import gradio as gr

from dxgraph.errors import DxGraphError, InputError
from dxgraph.ui import render
from dxgraph.ui.services import IMAGE_SUFFIXES, Services, new_id, validate_upload

__all__ = ["build_workflow_tab", "resolve_workflow", "plan_text", "run_workflow_ui", "progress_line", "NO_SAMPLE"]

log = logging.getLogger("dxgraph.ui")

NO_SAMPLE = "none (use the uploaded images)"


def resolve_workflow(services: Services, workflow_id: str, yaml_file):
    """The uploaded YAML workflow if there is one (validated: every error with its line),
    else the chosen built-in."""
    if yaml_file:
        from dxgraph.workflows.loader import parse_workflow

        path = validate_upload(getattr(yaml_file, "name", yaml_file), allowed=(".yaml", ".yml"), max_mb=1)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path.name!r} is not UTF-8 text") from None
        # Name errors after the file the visitor uploaded, not Gradio's temporary copy.
        return parse_workflow(text, file=path.name)
    if workflow_id not in services.workflows:
        raise InputError(f"choose a workflow; {workflow_id!r} is not one of {', '.join(services.workflows)}")
    return services.workflows[workflow_id]


def plan_text(wf) -> str:
    """The compiled plan as the planner describes it."""
    from dxgraph.agents.planner import compile_plan

    return compile_plan(wf).describe()


def validate_yaml(services: Services, yaml_file) -> tuple[str, str]:
    """On upload: ``(message html, plan)``; all of a file's errors, each ``FILE:LINE: message``."""
    if not yaml_file:
        return "", ""
    try:
        wf = resolve_workflow(services, "", yaml_file)
    except DxGraphError as exc:
        return render.message_html(f"The workflow file has problems:\n{exc}"), ""
    return render.message_html(f"Valid workflow {wf.id!r}: {len(wf.indicators)} indicators.", "ok"), plan_text(wf)


def _images(wf, files, sample: str) -> list[str]:
    uploaded = [str(validate_upload(getattr(f, "name", f), allowed=IMAGE_SUFFIXES)) for f in files or []]
    if uploaded:
        return uploaded
    if sample and sample != NO_SAMPLE:
        return [sample]
    names = ", ".join(s.name for s in wf.inputs)
    raise InputError(f"upload an image or choose a shipped sample; workflow {wf.id!r} needs: {names}")


async def run_workflow_ui(services: Services, workflow_id: str, yaml_file, files, sample: str):
    """Validate, show the plan, run, show the evidence (an async generator of page updates)."""
    from dxgraph.agents.diagnose import run_workflow

    try:
        wf = resolve_workflow(services, workflow_id, yaml_file)
        images = _images(wf, files, sample)
        plan = plan_text(wf)
        running = render.message_html(f"Running {len(wf.indicators)} indicators of {wf.id!r} on "
                                      f"{', '.join(Path(i).name for i in images)}…", "info")
        yield plan, running, render.placeholder_html("Running…"), gr.update(value=[], visible=False)
        overlay_dir = services.overlay_root / new_id("workflow")
        # Evidence streams in as each indicator's branch finishes: the graph runs on the agent
        # loop and hands results over to this (the page's) loop through a queue.
        page_loop = asyncio.get_running_loop()
        finished: asyncio.Queue = asyncio.Queue()

        def on_indicator(result) -> None:
            page_loop.call_soon_threadsafe(finished.put_nowait, result)

        task = asyncio.ensure_future(services.agents.run(
            run_workflow(wf, images, overlay_dir=overlay_dir, store=services.store, on_indicator=on_indicator)))
        lines: list[str] = []
        while not task.done() or not finished.empty():
            getter = asyncio.ensure_future(finished.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                continue
            lines.append(progress_line(getter.result()))
            yield plan, render.message_html(
                f"{len(lines)} of {len(wf.indicators)} indicators done:\n" + "\n".join(lines), "info"), \
                gr.update(), gr.update()
        dx = task.result()
        done = render.message_html(f"Finished in {dx.seconds:.2f} s · trace id {dx.trace_id or 'not traced'}", "ok")
        items = render.overlay_items(dx)
        yield plan, done, render.diagnosis_card(dx), gr.update(value=items, visible=bool(items))
    except DxGraphError as exc:
        gr.Warning(str(exc).splitlines()[0])
        yield gr.update(), render.message_html(str(exc)), gr.update(), gr.update()
    except Exception as exc:  # noqa: BLE001 - a message on the page; the trace goes to the log
        log.exception("workflow run failed")
        yield gr.update(), render.message_html(
            f"Something went wrong ({type(exc).__name__}); the details are in the server log."), gr.update(), gr.update()


def progress_line(result) -> str:
    """One finished indicator as a line of running evidence."""
    if result.status != "ok":
        return f"{result.id}: unavailable ({result.error})"
    return (f"{result.id} = {render.fmt_value(result.value, result.unit)} ({result.finding}; abnormal if {result.rule})"
            f" · {result.seconds:.2f} s")


def build_workflow_tab(services: Services) -> None:
    """Lay out the Workflow tab and wire its events (call inside ``gr.Blocks``)."""
    choices = [(f"{wf.name} ({wf.id})", wf.id) for wf in services.workflows.values()]
    first = "glaucoma" if "glaucoma" in services.workflows else (choices[0][1] if choices else None)
    gr.Markdown("Run a diagnostic workflow: the planner compiles its criteria into tool steps, the "
                "tools measure, and the assessor combines the evidence. Every number is shown.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            workflow = gr.Dropdown(choices, value=first, label="Built-in workflow", elem_id="wf-choice")
            yaml_file = gr.File(label="…or upload a workflow YAML", file_types=[".yaml", ".yml"],
                                height=100, elem_id="wf-yaml")
            sample = gr.Dropdown([NO_SAMPLE, *services.samples()], value="sample:retina",
                                 label="Shipped sample image", elem_id="wf-sample")
            files = gr.File(label="…or upload images, one per input · ≤ 20 MB",
                            file_count="multiple", file_types=list(IMAGE_SUFFIXES), height=100, elem_id="wf-files")
            run = gr.Button("Run workflow", variant="primary", elem_id="wf-run")
            msg = gr.HTML(elem_id="wf-msg")
            plan = gr.Textbox(label="Plan (compiled from the workflow's criteria)", lines=10, max_lines=24,
                              interactive=False, elem_id="wf-plan",
                              value=plan_text(services.workflows[first]) if first else "")
        with gr.Column(scale=3):
            card = gr.HTML(render.placeholder_html(
                "The diagnosis card appears here: the outcome, each indicator's value, unit, rule and "
                "verdict, the tools that measured it and how long they took."), elem_id="wf-card")
            # each overlay is already a zoomed crop with the measurement drawn: shown large,
            # click for full size (a 3-column 300 px strip made a disc ~15 px across)
            gallery = gr.Gallery(label="Measurement overlays (click for full size)", height=640, columns=1,
                                 object_fit="contain", fit_columns=False, preview=False, allow_preview=True,
                                 visible=False, elem_id="wf-overlays")

    def on_choice(wf_id):
        return plan_text(services.workflows[wf_id]) if wf_id in services.workflows else ""

    async def on_run(w, y, f, s):
        async for update in run_workflow_ui(services, w, y, f, s):
            yield update

    workflow.change(on_choice, workflow, plan)
    yaml_file.upload(lambda y: validate_yaml(services, y), yaml_file, [msg, plan])
    run.click(on_run, [workflow, yaml_file, files, sample], [plan, msg, card, gallery], concurrency_limit=4)
