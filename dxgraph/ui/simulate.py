"""The Simulate tab: a simulated patient (case x temperament) consults the doctor agent;
turns stream in as they happen, then the judge's verdict and rubric appear.

The cases are the bundled test split: the text vignettes and the imaging cases tied to the
built-in workflows (their photo goes to the workflow when the strategy uses tools). The
whole transcript is shown, not a scrolling window, with the patient's turns that disclosed
a fact highlighted."""

from __future__ import annotations

import asyncio
import logging

import gradio as gr

from dxgraph.errors import DxGraphError, InputError
from dxgraph.ui import render
from dxgraph.ui.services import Services, new_id

__all__ = ["build_simulate_tab", "simulate", "case_summary", "default_strategy"]

log = logging.getLogger("dxgraph.ui")


def case_summary(services: Services, case_id: str) -> str:
    """What the doctor may know before it asks: never the diagnosis."""
    case = services.cases.get(case_id)
    if case is None:
        return ""
    who = ", ".join(x for x in (f"{case.age} years" if case.age else "", case.sex or "") if x)
    tag = "synthetic vignette" if case.synthetic else f"source: {case.source}"
    imaging = (f"; imaging case: {len(case.images)} image(s) for the {case.workflow} workflow" if case.images else "")
    return (f"**{case.id}** ({who or 'age and sex not given'}; {tag}; {len(case.facts)} facts the patient may tell"
            f"{imaging})\n\n> {case.chief_complaint}")


def default_strategy(services: Services, case_id: str | None) -> str:
    """An imaging case's photo reaches the doctor only with tools; a text case talks."""
    case = services.cases.get(case_id or "")
    return "dialogue+image+tools" if case is not None and case.images and case.workflow else "dialogue"


async def simulate(services: Services, case_id: str, temperament: str, strategy: str, max_turns: int):
    """Run one consultation and yield ``(transcript html, final card, judge card, message)`` per turn."""
    from dxgraph.bench.dialogue import run_consultation

    seen: list = []
    facts: dict[str, str] = {}
    chat = render.transcript_html([])
    try:
        case = services.cases.get(case_id)
        if case is None:
            raise InputError(f"choose a case; {case_id!r} is not in the bundled test split")
        persona = services.personas.get(temperament)
        if persona is None:
            raise InputError(f"unknown temperament {temperament!r}; choose one of {', '.join(services.personas)}")
        facts = {f.id: f.category for f in case.facts}
        page_loop = asyncio.get_running_loop()
        turns: asyncio.Queue = asyncio.Queue()

        async def on_turn(turn) -> None:  # runs on the agent loop
            page_loop.call_soon_threadsafe(turns.put_nowait, turn)

        doctor = services.doctor(strategy)
        job = asyncio.wrap_future(services.agents.submit(run_consultation(
            case, persona, doctor, services.patient(), services.judge(),
            max_turns=int(max_turns), strategy=strategy, on_turn=on_turn)))
        waiting = render.message_html(f"Simulating: {case.id} as a {temperament} patient, strategy {strategy}…", "info")
        yield render.transcript_html([], running=True), "", "", waiting
        while not job.done() or not turns.empty():
            getter = asyncio.ensure_future(turns.get())
            await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                seen.append(getter.result())
                chat = render.transcript_html(seen, facts, running=True)
                yield chat, "", "", waiting
            else:
                getter.cancel()
        result = job.result()
        # The whole stored transcript (with each patient turn's disclosed facts), not just what streamed.
        chat = render.transcript_html(result.turns, facts)
        said = [t.text for t in result.turns if t.role == "patient"]
        saved = _persist(services, case, temperament, strategy, doctor.spec, result)
        final = render.final_card(result.final, title=f"doctor ({doctor.spec})", patient=False, sources=said)
        verdict = render.judge_card(result.judge, case.diagnosis) if result.judge is not None else ""
        done = render.message_html(
            f"{result.doctor_turns} doctor turns · ended by {result.ended_by or 'doctor'} · "
            f"{result.facts_elicited:.0%} of the facts elicited · {result.seconds:.1f} s"
            + (f" · saved as run {saved!r}" if saved else ""), "ok")
        yield chat, final, verdict, done
    except DxGraphError as exc:
        gr.Warning(str(exc))
        yield render.transcript_html(seen, facts), "", "", render.message_html(str(exc))
    except Exception as exc:  # noqa: BLE001 - a message on the page; the trace goes to the log
        log.exception("simulation failed")
        yield render.transcript_html(seen, facts), "", "", render.message_html(
            f"Something went wrong ({type(exc).__name__}); the details are in the server log.")


def _short(text: str, n: int) -> str:
    """At most ``n`` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= n:
        return text
    head = text[:n]
    return (head[: head.rfind(" ")] if " " in head else head).rstrip(" ,;:") + "…"


def _persist(services: Services, case, temperament: str, strategy: str, doctor: str, result) -> str | None:
    """Store the simulation as a one-sample dialogue run (same record as the benchmark's), so
    it shows in the Benchmarks tab with its transcript. Returns the run id, or None if the
    store could not be written (the page still shows the result)."""
    from dxgraph.bench.record import SampleResult
    from dxgraph.bench.runner import KIND
    from dxgraph.store import SampleRow

    run_id = new_id("sim")
    try:
        store = services.store
        store.create_run(run_id, kind=KIND, samples_total=1,
                         config={"source": "ui-simulate", "case": case.id, "temperament": temperament,
                                 "strategy": strategy, "doctor": doctor})
        store.save_sample(SampleRow(run_id=run_id, key=f"{case.id}|{temperament}|{strategy}|{doctor}",
                                    case_id=case.id, temperament=temperament, strategy=strategy, doctor=doctor,
                                    seconds=result.seconds,
                                    result_json=SampleResult.from_consultation(case, result).model_dump_json()),
                          result.turns)
        store.settle_run_status(run_id, {f"{case.id}|{temperament}|{strategy}|{doctor}"})
    except DxGraphError:
        log.exception("could not save the simulation")
        return None
    return run_id


def build_simulate_tab(services: Services) -> None:
    """Lay out the Simulate tab and wire its events (call inside ``gr.Blocks``)."""
    from dxgraph.agents.doctor import STRATEGIES

    try:
        cases = services.cases
        personas = services.personas
        problem = ""
    except DxGraphError as exc:
        cases, personas, problem = {}, {}, str(exc)
    case_choices = [(f"{'[imaging] ' if c.images else ''}{c.id}: {_short(c.chief_complaint, 60)}", c.id)
                    for c in cases.values()]
    first_case = case_choices[0][1] if case_choices else None
    gr.Markdown("A simulated patient with a temperament consults the doctor agent; a judge scores the "
                "diagnosis and the consultation. The patient tells a fact only when asked about it.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            case = gr.Dropdown(case_choices, value=first_case, elem_id="sim-case",
                               label=f"Case (test split: {sum(1 for c in cases.values() if not c.images)} text, "
                                     f"{sum(1 for c in cases.values() if c.images)} imaging)")
            about = gr.Markdown(case_summary(services, first_case) if first_case else "", elem_id="sim-about")
            temperament = gr.Dropdown(list(personas), value="neutral" if "neutral" in personas else
                                      (next(iter(personas), None)), label="Temperament", elem_id="sim-temperament")
            strategy = gr.Dropdown(list(STRATEGIES), value="dialogue", label="Doctor strategy", elem_id="sim-strategy")
            turns = gr.Slider(1, 14, value=6, step=1, label="Most questions before the doctor must conclude",
                              elem_id="sim-turns")
            run = gr.Button("Run simulation", variant="primary", elem_id="sim-run")
            msg = gr.HTML(render.message_html(problem), elem_id="sim-msg")
        with gr.Column(scale=3):
            gr.Markdown("**Simulated consultation** (patient on the right; highlighted: turns that disclosed a fact)")
            chat = gr.HTML(render.transcript_html([]), elem_id="sim-chat")
            with gr.Row(equal_height=False):
                final = gr.HTML(elem_id="sim-final")
                verdict = gr.HTML(elem_id="sim-judge")

    async def on_run(c, t, s, n):
        async for update in simulate(services, c, t, s, n):
            yield update

    case.change(lambda c: (case_summary(services, c), default_strategy(services, c)), case, [about, strategy])
    run.click(on_run, [case, temperament, strategy, turns], [chat, final, verdict, msg], concurrency_limit=4)
