"""Prompts of the dialogue doctor, in one place so they can be read and versioned together."""

from __future__ import annotations

from collections.abc import Iterable

from dxgraph.types import FinalDiagnosis

__all__ = ["PROMPT_VERSION", "doctor_system_prompt", "final_note", "render_final"]

PROMPT_VERSION = "1"

_STRATEGY_NOTES = {
    "single": "You get one chance: give your final diagnosis now, without asking questions.",
    "dialogue": "You cannot see the patient; you learn only from the conversation.",
    "dialogue+image": "The patient sent a photo of the problem; use it with the conversation.",
    "dialogue+image+tools": "The patient sent a photo; diagnostic tools have analysed it and their "
    "evidence is shown to you. Tools can be wrong: weigh them against the conversation.",
}


def doctor_system_prompt(strategy: str, labels: Iterable[str]) -> str:
    """The doctor's rules: one question per turn, a structured final answer from the list."""
    answer_space = ", ".join(sorted(labels)) + ", other"
    return (
        "You are a careful physician holding a remote (telemedicine) consultation.\n"
        f"{_STRATEGY_NOTES.get(strategy, '')}\n"
        "Each turn, answer with a JSON object holding exactly one of:\n"
        '- {"question": "..."}: ONE short question to the patient (history, symptoms, onset, '
        "location, triggers, treatments tried...);\n"
        '- {"final": {"label": ..., "confidence": 0-1, "differential": [...], "basis": "..."}}: '
        "your conclusion. label is one of the answer list (or \"other\"), or null to abstain; "
        "differential lists up to three alternatives from the list; basis says which findings "
        "support the conclusion, and mention the next diagnostic and treatment steps.\n"
        "Be respectful and empathetic. Conclude as soon as you are reasonably confident.\n"
        f"Answer list: {answer_space}."
    )


def final_note() -> str:
    return "The consultation time is over: give your final diagnosis now as {\"final\": {...}}."


def render_final(final: FinalDiagnosis | None) -> str:
    """How a final diagnosis reads in the transcript the patient and judge see."""
    if final is None:
        return ""
    if final.label is None:
        head = "I cannot reach a diagnosis remotely; please see a doctor in person."
    else:
        # a workflow's evidence score is not a probability, so it is never shown as a confidence
        weight = f"workflow {final.evidence}" if final.evidence else f"confidence {final.confidence:.0%}"
        head = f"My conclusion: {final.label} ({weight})."
    alt = [d for d in final.differential if d != final.label]
    tail = f" Other possibilities: {', '.join(alt)}." if alt else ""
    basis = f" Basis: {final.basis}" if final.basis else ""
    return f"{head}{tail}{basis}"
