"""One consultation as a langgraph graph: doctor <-> patient, ending at the doctor's answer.

::

    START -> doctor --question--> patient --> doctor ... --final--> END

Judging is a step of its own, after the graph: the benchmark runner stores the dialogue
first and then judges it through ``bench.rejudge`` (the code path of ``bench judge``), so a
judge that fails never loses a transcript. ``run_consultation`` still takes a ``judge`` for
callers without a store (the demo), and runs it after the graph.

The state is plain data (turns as dicts, counters, the final diagnosis as a dict), so it
can be checkpointed or persisted; the doctor, patient and the case view come in
through langgraph's run context. Every dialogue is bounded: after ``max_turns`` doctor
questions, or when the patient's reply carries the end signal, the doctor must conclude;
a recursion limit backs that up.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from dxgraph.agents.doctor import CaseView, Doctor
from dxgraph.agents.hints import HINT_STRATEGY, hinted_view
from dxgraph.bench.judge import JudgeResult
from dxgraph.simulator.patient import Patient
from dxgraph.telemetry import get_tracer, traced
from dxgraph.types import Case, FinalDiagnosis, Turn

__all__ = ["ConsultationResult", "DialogueContext", "build_dialogue_graph", "run_consultation"]

OnTurn = Callable[[Turn], Awaitable[None]]


class DialogueState(TypedDict, total=False):
    case_id: str
    strategy: str
    turns: Annotated[list[dict], operator.add]
    questions: int
    patient_ended: bool
    final: dict | None
    ended_by: str | None
    disclosed: dict[str, int]


@dataclass
class DialogueContext:
    """What the nodes use but the state must not hold."""

    view: CaseView
    case: Case
    doctor: Doctor
    patient: Patient
    max_turns: int = 14
    on_turn: OnTurn | None = None


class ConsultationResult(BaseModel):
    """A finished consultation: transcript with costs, the answer, the verdict."""

    case_id: str
    strategy: str
    persona: str
    turns: list[Turn]
    final: FinalDiagnosis
    judge: JudgeResult | None = None
    disclosed: dict[str, int] = Field(default_factory=dict)
    facts_elicited: float = 0.0
    doctor_turns: int = 0
    ended_by: str = ""
    seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


async def _emit(ctx: DialogueContext, turns: list[Turn]) -> list[dict]:
    if ctx.on_turn is not None:
        for turn in turns:
            await ctx.on_turn(turn)
    return [t.model_dump(mode="json") for t in turns]


@traced("dialogue.doctor")
async def _doctor(state: DialogueState, runtime: Runtime[DialogueContext]) -> dict:
    ctx = runtime.context
    turns = [Turn.model_validate(t) for t in state.get("turns", [])]
    questions = state.get("questions", 0)
    must = questions >= ctx.max_turns or bool(state.get("patient_ended"))
    out = await ctx.doctor.act(ctx.view, turns, must_finalize=must)
    index = len(turns)
    new: list[Turn] = []
    for tool_turn in out.tool_turns:
        new.append(tool_turn.model_copy(update={"index": index}))
        index += 1
    final = out.action.final
    new.append(
        Turn(
            index=index,
            role="doctor",
            text=out.text,
            latency_ms=out.latency_ms,
            input_tokens=out.input_tokens,
            output_tokens=out.output_tokens,
            end=final is not None,
        )
    )
    update: dict[str, Any] = {"turns": await _emit(ctx, new)}
    if final is not None:
        update["final"] = final.model_dump(mode="json")
        update["ended_by"] = (
            "patient" if state.get("patient_ended") else "turn_limit" if questions >= ctx.max_turns else "doctor"
        )
    else:
        update["questions"] = questions + 1
    return update


@traced("dialogue.patient")
async def _patient(state: DialogueState, runtime: Runtime[DialogueContext]) -> dict:
    ctx = runtime.context
    turns = state.get("turns", [])
    reply = await ctx.patient.step(turns[-1]["text"], images_shown=ctx.view.sees_image)
    turn = Turn(
        index=len(turns),
        role="patient",
        text=reply.text,
        revealed_facts=list(reply.revealed),
        latency_ms=reply.latency_ms,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        end=reply.end,
        disclosure=getattr(reply, "disclosure", None),
    )
    return {
        "turns": await _emit(ctx, [turn]),
        "patient_ended": reply.end,
        "disclosed": dict(ctx.patient.disclosed),
    }


def _after_doctor(state: DialogueState) -> str:
    return "end" if state.get("final") is not None else "patient"


def build_dialogue_graph():
    """The compiled consultation graph (build once, invoke per consultation)."""
    g = StateGraph(DialogueState, context_schema=DialogueContext)
    g.add_node("doctor", _doctor)
    g.add_node("patient", _patient)
    g.add_edge(START, "doctor")
    g.add_conditional_edges("doctor", _after_doctor, {"end": END, "patient": "patient"})
    g.add_edge("patient", "doctor")
    return g.compile()


_GRAPH: list = []


def _graph():
    if not _GRAPH:
        _GRAPH.append(build_dialogue_graph())
    return _GRAPH[0]


async def run_consultation(
    case: Case,
    persona,
    doctor: Doctor,
    patient: Patient,
    judge=None,
    *,
    max_turns: int = 14,
    strategy: str = "dialogue",
    on_turn: OnTurn | None = None,
    seed: int = 0,
    hints: Sequence[str] = (),
) -> ConsultationResult:
    """Run one consultation to its final diagnosis and (if a judge is given) its verdict.

    Args:
        case: the case; the doctor sees only ``CaseView.from_case(case, strategy)``.
        persona: the patient's temperament (a Persona).
        doctor: any Doctor (``LLMDoctor``, ``RuleDoctor``).
        patient: any Patient; it is ``reset`` here with ``seed``.
        judge: a Judge run after the dialogue, or None (the benchmark judges stored
            dialogues itself: ``bench.rejudge.judge_stored``).
        max_turns: doctor questions before the doctor must conclude.
        strategy: one of ``dxgraph.agents.doctor.STRATEGIES``.
        on_turn: awaited with every turn as it happens (persistence, streaming UI).
        seed: the patient's seed.
        hints: a classifier's labels, most likely first, for ``dialogue+hints``.
    """
    start = time.perf_counter()
    if strategy == HINT_STRATEGY:
        view: CaseView = hinted_view(case, hints)
    else:
        view = CaseView.from_case(case, strategy)
    opening = patient.reset(case, persona, seed)
    persona_name = getattr(persona, "name", None) or str(persona)
    ctx = DialogueContext(
        view=view, case=case, doctor=doctor, patient=patient,
        max_turns=max_turns, on_turn=on_turn,
    )
    with get_tracer().start_as_current_span("consultation") as span:
        span.set_attribute("dxgraph.case_id", view.case_id)  # opaque: traces may leave the host
        span.set_attribute("dxgraph.strategy", strategy)
        span.set_attribute("dxgraph.persona", persona_name)
        state = await _graph().ainvoke(
            {"case_id": view.case_id, "strategy": strategy, "turns": await _emit(ctx, [opening]),
             "questions": 0, "patient_ended": False, "final": None, "disclosed": {}},
            context=ctx,
            config={"recursion_limit": 2 * max_turns + 10},
        )
        span.set_attribute("dxgraph.doctor_turns", state.get("questions", 0))
    turns = [Turn.model_validate(t) for t in state["turns"]]
    final = FinalDiagnosis.model_validate(state["final"])
    verdict = None
    if judge is not None:
        with get_tracer().start_as_current_span("dialogue.judge"):
            verdict = await judge.evaluate(case, final, turns)
    disclosed = dict(state.get("disclosed") or {})
    n_facts = len(case.facts)
    return ConsultationResult(
        case_id=case.id,
        strategy=strategy,
        persona=persona_name,
        turns=turns,
        final=final,
        judge=verdict,
        disclosed=disclosed,
        facts_elicited=round(len(disclosed) / n_facts, 4) if n_facts else 0.0,
        doctor_turns=sum(1 for t in turns if t.role == "doctor"),
        ended_by=state.get("ended_by") or "",
        seconds=round(time.perf_counter() - start, 4),
        input_tokens=sum(t.input_tokens for t in turns),
        output_tokens=sum(t.output_tokens for t in turns),
    )
