"""The Consult tab: the visitor is the patient and chats with the doctor agent.

Doctors are stateless (``act(view, transcript)``), so the page keeps the consultation (a
typed ``ConsultSession``) in the server's ``SessionStore`` under a token the browser holds
(``gr.BrowserState``), and asks the doctor for one turn per message: no task waits across
requests, a closed tab leaves nothing running, and a reload finds the consultation again.
The patient reads the conclusion as its own message: the most likely diagnosis and what it
rests on, never a probability. Attached images go to the
diagnostic workflow the visitor picks (through the doctor's ``ToolBox``), and its evidence
appears as a tool step before the doctor's next question. Every exchange is written to the
store as a run of kind ``consult`` (one sample holding the transcript).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import gradio as gr

from dxgraph.errors import DxGraphError, InputError
from dxgraph.types import Diagnosis, Turn
from dxgraph.ui import render
from dxgraph.ui.services import IMAGE_SUFFIXES, Services, new_id, validate_upload
from dxgraph.ui.sessions import ConsultSession

__all__ = ["build_consult_tab", "consult_turn", "new_consultation", "restore", "ConsultSession", "NO_WORKFLOW",
           "MAX_QUESTIONS", "KIND"]

log = logging.getLogger("dxgraph.ui")

KIND = "consult"
NO_WORKFLOW = "none: the doctor only notes the image"
MAX_QUESTIONS = 14
CARD_PLACEHOLDER = ("The diagnosis card appears here when the doctor concludes: the most likely diagnosis, "
                    "the other possibilities, what they rest on, and any workflow evidence with its numbers.")
STORAGE_KEY = "dxgraph-consult"


def _messages(s: ConsultSession) -> list[dict]:
    """The chat as the patient reads it: one message per turn (a question and the conclusion
    are never merged), workflow evidence as a tool step, no server path, each tool error once."""
    out = []
    for t in s.turns:
        if t.role == "tool" and (t.tool or "").startswith("workflow:") and s.dx is not None:
            t = t.model_copy(update={"text": render.workflow_step_text(s.dx)})
        elif t.role == "tool":
            t = t.model_copy(update={"text": render.public_text(t.text)})
        out.append(render.turn_message(t))
    return out


def _persist(services: Services, s: ConsultSession) -> str:
    """Write the transcript so far; a store failure is reported, the consultation goes on."""
    from dxgraph.store import SampleRow

    try:
        store = services.store
        if store.get_run(s.id) is None:
            store.create_run(s.id, kind=KIND, samples_total=1,
                             config={"doctor": services.spec("doctor"), "strategy": s.strategy,
                                     "workflow": s.workflow})
        result = {"final": s.final.model_dump(mode="json") if s.final else None,
                  "diagnosis": s.dx.model_dump(mode="json") if s.dx else None, "images": [Path(p).name for p in s.images],
                  "strategy": s.strategy, "workflow": s.workflow}
        status = "done" if s.final else "open"
        store.save_sample(SampleRow(run_id=s.id, key="transcript", case_id=s.id, strategy=s.strategy,
                                    doctor=services.spec("doctor") or "", status=status,
                                    result_json=json.dumps(result, default=str)),
                          list(s.turns))
        if s.final:
            store.set_run_status(s.id, "done")
    except DxGraphError as exc:
        return f"The transcript could not be saved: {render.public_text(str(exc))}"
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


def _outputs(s: ConsultSession, token: str, msg: str = "", kind: str = "error", *, pending: dict | None = None,
             clear_input: bool = False):
    chat = _messages(s) + ([pending] if pending else [])
    card = render.placeholder_html(CARD_PLACEHOLDER)
    if s.final:
        card = render.final_card(s.final, s.dx, sources=s.patient_words, compact=True)
    elif s.dx is not None:
        card = render.diagnosis_card(s.dx, compact=True)
    items = render.overlay_items(s.dx)
    gallery = gr.update(value=items, visible=bool(items))
    text_update = gr.update(value="") if clear_input else gr.update()
    files_update = gr.update(value=None) if clear_input else gr.update()
    return (chat, text_update, files_update, card, gallery, render.message_html(msg, kind), token)


async def consult_turn(services: Services, text: str, files, workflow: str, token: str | None, *,
                       finish: bool = False):
    """One exchange: the visitor's message (and attachments), tool evidence, the doctor's turn.

    ``token`` is the browser session's key into ``services.sessions`` (empty: a new one is
    made and handed back as the last output). An async generator: each yield updates the
    page, so the message, the running tool step and the doctor's reply appear as they happen.
    """
    s = services.sessions.get(token) or ConsultSession()
    token = token if token and services.sessions.get(token) is not None else services.sessions.new_token()
    text = (text or "").strip()

    def out(*args, **kw):
        services.sessions.put(token, s)
        return _outputs(s, token, *args, **kw)

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
        yield out(pending=render.pending_tool_message("doctor", "thinking…"), clear_input=True)

        if s.images and len(s.images) > s.evidence_for and (s.workflow or services.model("vlm") is not None):
            tool = f"workflow:{s.workflow}" if s.workflow else "vlm"
            yield out(pending=render.pending_tool_message(tool, f"analysing {len(s.images)} image(s)…"))
            tool_turns, dx = await _gather_evidence(services, s)
            s.evidence_for = len(s.images)
            for t in tool_turns:
                s.add(t)
            if dx is not None:
                s.dx = dx
            yield out(pending=render.pending_tool_message("doctor", "thinking…"))

        doctor = services.doctor(s.strategy)
        transcript = list(s.turns)
        must = finish or s.questions >= MAX_QUESTIONS
        out_ = await services.agents.run(doctor.act(s.view(), transcript, must_finalize=must))
        for t in out_.tool_turns:
            s.add(t)
        final = out_.action.final
        # The conclusion as the patient reads it (and as it is stored): the most likely
        # diagnosis and its basis, no probability; its own message, never the question's.
        said = render.conclusion_text(final, s.dx, s.patient_words) if final is not None else out_.text
        s.add(Turn(index=0, role="doctor", text=said, latency_ms=out_.latency_ms,
                   input_tokens=out_.input_tokens, output_tokens=out_.output_tokens, end=final is not None))
        if final is not None:
            s.final = final
        problem = _persist(services, s)
        yield out(problem, "error" if problem else "ok")
    except DxGraphError as exc:
        gr.Warning(render.public_text(str(exc)))
        yield out(str(exc))
    except Exception as exc:  # noqa: BLE001 - the page shows a message, the log keeps the trace
        log.exception("consult turn failed")
        yield out(f"Something went wrong ({type(exc).__name__}); the details are in the server log.")


def new_consultation(services: Services, token: str | None):
    """A fresh, empty consultation for this browser session (the old one stays in the store)."""
    services.sessions.drop(token)
    token = services.sessions.new_token()
    services.sessions.put(token, ConsultSession())
    return ([], gr.update(value=""), gr.update(value=None), render.placeholder_html(CARD_PLACEHOLDER),
            gr.update(value=[], visible=False),
            render.message_html("New consultation: describe what brings you here.", "info"), token)


def restore(services: Services, token: str | None):
    """On page load: this browser session's consultation, as it was before the reload."""
    s = services.sessions.get(token)
    if s is None or not s.turns:
        return ([], gr.update(), gr.update(), render.placeholder_html(CARD_PLACEHOLDER),
                gr.update(value=[], visible=False), "", token or "")
    note = "Your consultation was restored" + (" (it has ended)." if s.final else "; carry on where you left off.")
    return _outputs(s, token or "", note, "info")


def ended(services: Services, token: str | None) -> bool:
    s = services.sessions.get(token)
    return bool(s and s.final)


def build_consult_tab(services: Services):
    """Lay out the Consult tab and wire its events (call inside ``gr.Blocks``).

    Returns:
        ``(on_load, inputs, outputs)`` for the app to restore a consultation when a page loads.
    """
    # Only a token lives in the browser (localStorage, encrypted); the consultation is on the server.
    state = gr.BrowserState("", storage_key=STORAGE_KEY)
    wf_choices = [NO_WORKFLOW] + [(f"{wf.name}", wf.id) for wf in services.workflows.values()]
    gr.Markdown("You are the patient. Describe what brings you here; the doctor asks one question "
                "at a time and ends with a diagnosis. You may attach a photo, DICOM or NIfTI image.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chat = gr.Chatbot(label="Consultation", show_label=False, height=460, elem_id="consult-chat",
                              placeholder="Your conversation with the doctor appears here.",
                              feedback_options=None, buttons=["copy"], group_consecutive_messages=False)
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
        done = ended(services, st)
        return [gr.update(interactive=not done), gr.update(interactive=not done), gr.update(interactive=True)]

    for trigger, handler, inputs in ((send.click, on_send, [text, files, workflow, state]),
                                     (text.submit, on_send, [text, files, workflow, state]),
                                     (finish.click, on_finish, [files, workflow, state])):
        (trigger(lock, None, buttons, queue=False)
         .then(handler, inputs, outputs, concurrency_limit=8)
         .then(unlock, [state], buttons, queue=False))
    reset.click(lambda st: new_consultation(services, st), [state], outputs).then(unlock, [state], buttons, queue=False)

    def on_load(st):
        return (*restore(services, st), *unlock(st))

    return on_load, [state], [*outputs, *buttons]
