"""The Consult tab: the visitor is the patient and chats with the doctor agent.

Doctors are stateless (``act(view, transcript)``), so the page keeps the consultation in
the browser session's ``gr.State`` and asks the doctor for one turn per message: no task
waits across requests, and a closed tab leaves nothing running. Attached images go to the
diagnostic workflow the visitor picks (through the doctor's ``ToolBox``), and its evidence
appears as a tool step before the doctor's next question. Every exchange is written to the
store as a run of kind ``consult`` (one sample holding the transcript).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from dxgraph.errors import DxGraphError, InputError
from dxgraph.types import Diagnosis, FinalDiagnosis, ImageRef, Turn
from dxgraph.ui import render
from dxgraph.ui.services import IMAGE_SUFFIXES, Services, new_id, validate_upload

__all__ = ["build_consult_tab", "ConsultSession", "NO_WORKFLOW", "MAX_QUESTIONS", "KIND"]

log = logging.getLogger("dxgraph.ui")

KIND = "consult"
NO_WORKFLOW = "none: the doctor only notes the image"
MAX_QUESTIONS = 14
CARD_PLACEHOLDER = ("The diagnosis card appears here when the doctor concludes: the diagnosis with its "
                    "confidence, the differential, and any workflow evidence with its numbers.")


class ConsultSession:
    """One visitor's consultation, as plain data kept in ``gr.State`` between events."""

    def __init__(self, data: dict[str, Any] | None = None):
        data = data or {}
        self.id: str | None = data.get("id")
        self.turns: list[dict] = list(data.get("turns", []))
        self.images: list[str] = list(data.get("images", []))
        self.complaint: str = data.get("complaint", "")
        self.workflow: str | None = data.get("workflow")
        self.dx: dict | None = data.get("dx")
        self.final: dict | None = data.get("final")
        self.evidence_for: int = data.get("evidence_for", 0)

    def dump(self) -> dict[str, Any]:
        return dict(id=self.id, turns=self.turns, images=self.images, complaint=self.complaint,
                    workflow=self.workflow, dx=self.dx, final=self.final, evidence_for=self.evidence_for)

    @property
    def strategy(self) -> str:
        if not self.images:
            return "dialogue"
        return "dialogue+image+tools" if self.workflow else "dialogue+image"

    @property
    def questions(self) -> int:
        return sum(1 for t in self.turns if t["role"] == "doctor")

    def view(self):
        from dxgraph.agents.doctor import CaseView

        return CaseView(case_id=self.id or "consult", strategy=self.strategy, chief_complaint=self.complaint,
                        images=[ImageRef(path=p) for p in self.images], workflow=self.workflow)

    def add(self, turn: Turn) -> None:
        self.turns.append(turn.model_copy(update={"index": len(self.turns)}).model_dump(mode="json"))

    def messages(self) -> list[dict]:
        return [render.turn_message(t) for t in self.turns]


def _persist(services: Services, s: ConsultSession) -> str:
    """Write the transcript so far; a store failure is reported, the consultation goes on."""
    from dxgraph.store import SampleRow

    try:
        store = services.store
        if store.get_run(s.id) is None:
            store.create_run(s.id, kind=KIND, samples_total=1,
                             config={"doctor": services.spec("doctor"), "strategy": s.strategy,
                                     "workflow": s.workflow})
        result = {"final": s.final, "diagnosis": s.dx, "images": [Path(p).name for p in s.images],
                  "strategy": s.strategy, "workflow": s.workflow}
        status = "done" if s.final else "open"
        store.save_sample(SampleRow(run_id=s.id, key="transcript", case_id=s.id, strategy=s.strategy,
                                    doctor=services.spec("doctor") or "", status=status,
                                    result_json=json.dumps(result, default=str)),
                          [Turn.model_validate(t) for t in s.turns])
        if s.final:
            store.set_run_status(s.id, "done")
    except DxGraphError as exc:
        return f"The transcript could not be saved: {exc}"
    return ""


def _keep_uploads(services: Services, s: ConsultSession, files: list | None) -> list[str]:
    """Validate attachments and copy them beside the transcript; return the new paths."""
    kept = []
    for f in files or []:
        src = validate_upload(getattr(f, "name", f), allowed=IMAGE_SUFFIXES)
        dest_dir = services.upload_dir / s.id
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / f"{len(s.images) + len(kept)}_{src.name}"
        shutil.copyfile(src, dest)
        kept.append(str(dest))
    return kept


async def _gather_evidence(services: Services, s: ConsultSession) -> tuple[list[Turn], Diagnosis | None]:
    """Run the doctor's tools on the attachments (the chosen workflow, or the VLM)."""
    from dxgraph.agents.doctor import ToolBox
    from dxgraph.agents.diagnose import run_workflow

    seen: list[Diagnosis] = []
    overlay_dir = services.overlay_root / (s.id or "consult")

    async def runner(workflow: str, paths: list[str]) -> Diagnosis:
        dx = await run_workflow(workflow, paths, overlay_dir=overlay_dir, store=services.store)
        seen.append(dx)
        return dx

    box = ToolBox(vlm=services.model("vlm"), workflow_runner=runner)
    turns = await services.agents.run(box.evidence(s.view()))
    return turns, (seen[-1] if seen else None)


def _outputs(s: ConsultSession, msg: str = "", kind: str = "error", *, pending: dict | None = None,
             clear_input: bool = False):
    chat = s.messages() + ([pending] if pending else [])
    dx = Diagnosis.model_validate(s.dx) if s.dx else None
    card = render.placeholder_html(CARD_PLACEHOLDER)
    if s.final:
        card = render.final_card(FinalDiagnosis.model_validate(s.final), dx)
    elif dx is not None:
        card = render.diagnosis_card(dx)
    items = render.overlay_items(dx)
    gallery = gr.update(value=items, visible=bool(items))
    text_update = gr.update(value="") if clear_input else gr.update()
    files_update = gr.update(value=None) if clear_input else gr.update()
    return (chat, text_update, files_update, card, gallery, render.message_html(msg, kind), s.dump())


async def consult_turn(services: Services, text: str, files, workflow: str, state: dict | None, *,
                       finish: bool = False):
    """One exchange: the visitor's message (and attachments), tool evidence, the doctor's turn.

    An async generator: each yield updates the page, so the message, the running tool step
    and the doctor's reply appear as they happen.
    """
    s = ConsultSession(state)
    text = (text or "").strip()
    try:
        if s.final:
            raise InputError("this consultation has ended; press 'New consultation' to start another")
        if not text and not finish:
            raise InputError("type a message to the doctor first")
        if finish and not s.turns:
            raise InputError("tell the doctor what brings you here before asking for a conclusion")
        if s.id is None:
            s.id = new_id(KIND)
        if not s.turns:
            s.complaint = text
        new_images = _keep_uploads(services, s, files)
        s.images += new_images
        if workflow and workflow != NO_WORKFLOW and workflow not in services.workflows:
            raise InputError(f"unknown workflow {workflow!r}")
        s.workflow = None if not workflow or workflow == NO_WORKFLOW else workflow
        if text:
            s.add(Turn(index=0, role="patient", text=text + (f"\n\n(attached: {', '.join(Path(p).name.split('_', 1)[1] for p in new_images)})" if new_images else "")))
        yield _outputs(s, pending=render.pending_tool_message("doctor", "thinking…"), clear_input=True)

        if s.images and len(s.images) > s.evidence_for and (s.workflow or services.model("vlm") is not None):
            tool = f"workflow:{s.workflow}" if s.workflow else "vlm"
            yield _outputs(s, pending=render.pending_tool_message(tool, f"analysing {len(s.images)} image(s)…"))
            tool_turns, dx = await _gather_evidence(services, s)
            s.evidence_for = len(s.images)
            for t in tool_turns:
                s.add(t)
            if dx is not None:
                s.dx = dx.model_dump(mode="json")
            yield _outputs(s, pending=render.pending_tool_message("doctor", "thinking…"))

        doctor = services.doctor(s.strategy)
        transcript = [Turn.model_validate(t) for t in s.turns]
        must = finish or s.questions >= MAX_QUESTIONS
        out = await services.agents.run(doctor.act(s.view(), transcript, must_finalize=must))
        for t in out.tool_turns:
            s.add(t)
        s.add(Turn(index=0, role="doctor", text=out.text, latency_ms=out.latency_ms,
                   input_tokens=out.input_tokens, output_tokens=out.output_tokens,
                   end=out.action.final is not None))
        if out.action.final is not None:
            s.final = out.action.final.model_dump(mode="json")
        problem = _persist(services, s)
        yield _outputs(s, problem, "error" if problem else "ok")
    except DxGraphError as exc:
        gr.Warning(str(exc))
        yield _outputs(s, str(exc))
    except Exception as exc:  # noqa: BLE001 - the page shows a message, the log keeps the trace
        log.exception("consult turn failed")
        yield _outputs(s, f"Something went wrong ({type(exc).__name__}); the details are in the server log.")


def new_consultation():
    """A fresh, empty consultation for this browser session."""
    s = ConsultSession()
    return ([], gr.update(value=""), gr.update(value=None), render.placeholder_html(CARD_PLACEHOLDER),
            gr.update(value=[], visible=False),
            render.message_html("New consultation: describe what brings you here.", "info"), s.dump())


def build_consult_tab(services: Services) -> None:
    """Lay out the Consult tab and wire its events (call inside ``gr.Blocks``)."""
    state = gr.State({})
    wf_choices = [NO_WORKFLOW] + [(f"{wf.name}", wf.id) for wf in services.workflows.values()]
    gr.Markdown("You are the patient. Describe what brings you here; the doctor asks one question "
                "at a time and ends with a diagnosis. You may attach a photo, DICOM or NIfTI image.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chat = gr.Chatbot(label="Consultation", height=460, elem_id="consult-chat",
                              placeholder="Your conversation with the doctor appears here.",
                              feedback_options=None, buttons=["copy"])
            with gr.Row():
                text = gr.Textbox(placeholder="e.g. I have had an itchy red rash on my elbows for two weeks",
                                  show_label=False, scale=5, lines=1, max_lines=6, elem_id="consult-input",
                                  autofocus=True)
                send = gr.Button("Send", variant="primary", scale=1, elem_id="consult-send")
            with gr.Row():
                finish = gr.Button("Ask for the diagnosis now", size="sm", elem_id="consult-finish")
                reset = gr.Button("New consultation", size="sm", elem_id="consult-new")
            msg = gr.HTML(elem_id="consult-msg")
        with gr.Column(scale=2):
            files = gr.File(label="Attach images · png, jpg, DICOM, NIfTI · up to 20 MB",
                            file_count="multiple", file_types=list(IMAGE_SUFFIXES), height=120,
                            elem_id="consult-files")
            workflow = gr.Dropdown(wf_choices, value=NO_WORKFLOW, label="Analyse attached images with",
                                   elem_id="consult-workflow")
            card = gr.HTML(render.placeholder_html(CARD_PLACEHOLDER), elem_id="consult-card")
            gallery = gr.Gallery(label="Measurement overlays (click for full size)", height=520, columns=1, object_fit="contain",
                                 fit_columns=False, preview=False, allow_preview=True, visible=False,
                                 elem_id="consult-overlays")
    outputs = [chat, text, files, card, gallery, msg, state]

    async def on_send(t, f, w, st):
        async for update in consult_turn(services, t, f, w, st):
            yield update

    async def on_finish(f, w, st):
        async for update in consult_turn(services, "", f, w, st, finish=True):
            yield update

    # While a turn runs the buttons are locked, so a second click cannot race the first
    # over the same session state.
    buttons = [send, finish, reset]

    def lock():
        return [gr.update(interactive=False)] * len(buttons)

    def unlock(st):
        # Once the doctor has concluded there is nothing to send: only "New consultation" stays live.
        ended = bool((st or {}).get("final"))
        return [gr.update(interactive=not ended), gr.update(interactive=not ended), gr.update(interactive=True)]

    for trigger, handler, inputs in ((send.click, on_send, [text, files, workflow, state]),
                                     (text.submit, on_send, [text, files, workflow, state]),
                                     (finish.click, on_finish, [files, workflow, state])):
        (trigger(lock, None, buttons, queue=False)
         .then(handler, inputs, outputs, concurrency_limit=8)
         .then(unlock, [state], buttons, queue=False))
    reset.click(new_consultation, None, outputs).then(unlock, [state], buttons, queue=False)
