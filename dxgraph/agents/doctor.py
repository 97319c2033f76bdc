"""The LLM doctor, and the doctor's public names in one place.

The pieces live beside it: ``doctor_view`` (strategies, the ``CaseView`` a doctor may see),
``doctor_actions`` (``DoctorAction`` and its wire schema, the ``Doctor`` protocol) and
``toolbox`` (the workflow / VLM evidence gathered before the first question).
"""

from __future__ import annotations

from collections.abc import Sequence

from dxgraph.agents.doctor_actions import Doctor, DoctorAction, DoctorTurn, FinalAction
from dxgraph.agents.doctor_view import STRATEGIES, CaseView, Strategy
from dxgraph.agents.prompts import doctor_system_prompt, final_note
from dxgraph.agents.toolbox import ToolBox, image_part, workflow_label
from dxgraph.errors import ModelOutputError
from dxgraph.models.base import ChatModel, GenerateConfig, ImagePart, Message, assistant, system, user
from dxgraph.simulator import labels as label_table
from dxgraph.types import FinalDiagnosis, Turn

__all__ = [
    "Strategy",
    "STRATEGIES",
    "CaseView",
    "DoctorAction",
    "FinalAction",
    "DoctorTurn",
    "Doctor",
    "LLMDoctor",
    "ToolBox",
    "image_part",
    "workflow_label",
]

class LLMDoctor:
    """A model asks one question per turn and ends with a structured final diagnosis.

    Args:
        model: the doctor model.
        strategy: one of ``STRATEGIES``.
        vision: attach the photo as an image (a VLM); otherwise its description is given.
        tools: the ToolBox for ``dialogue+image+tools``.
        max_repairs: retries, with the validation error shown, when an answer is unusable.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        strategy: str = "dialogue",
        vision: bool = False,
        tools: ToolBox | None = None,
        max_repairs: int = 2,
        max_tokens: int = 400,
    ):
        self.model = model
        self.strategy = strategy
        self.vision = vision
        self.tools = tools or ToolBox()
        self.max_repairs = max_repairs
        self.max_tokens = max_tokens
        self.spec = f"{getattr(model, 'spec', 'llm')}|{strategy}"

    def messages(self, view: CaseView, transcript: Sequence[Turn], must_finalize: bool) -> list[Message]:
        """The prompt: system rules, the visible case, then the consultation so far."""
        who = ", ".join(x for x in (f"{view.age} years old" if view.age else "", view.sex or "") if x)
        intro = f"New telemedicine patient{f' ({who})' if who else ''}."
        images: list[ImagePart] = []
        if view.sees_image:
            if self.vision:
                images = [p for p in (image_part(i) for i in view.images) if p is not None]
                intro += " The patient sent the attached photo." if images else " The photo could not be opened."
            elif view.visual_findings:
                intro += f"\nWhat the photo the patient sent shows: {view.visual_findings}"
        labels = label_table.ALL_LABELS if view.workflow else label_table.LABELS
        msgs = [system(doctor_system_prompt(view.strategy, labels)), user(intro, *images)]
        for turn in transcript:
            if turn.role == "doctor":
                msgs.append(assistant(turn.text))
            elif turn.role == "tool":
                msgs.append(user(f"[tool evidence from {turn.tool}] {turn.text}"))
            elif turn.role == "patient":
                msgs.append(user(f"Patient: {turn.text}"))
        if must_finalize:
            msgs.append(user(final_note()))
        return msgs

    async def act(
        self, view: CaseView, transcript: Sequence[Turn], *, must_finalize: bool = False
    ) -> DoctorTurn:
        """Ask the next question or conclude; repair unusable answers a bounded number of times."""
        transcript = list(transcript)
        tool_turns: list[Turn] = []
        if view.uses_tools and not any(t.role == "tool" for t in transcript):
            tool_turns = await self.tools.evidence(view)
            transcript += tool_turns
        must_finalize = must_finalize or view.strategy == "single"
        msgs = self.messages(view, transcript, must_finalize)
        spent = [0.0, 0, 0]
        problem = ""
        failure: ModelOutputError | None = None
        for _ in range(self.max_repairs + 1):
            try:
                out = await self.model.generate(
                    msgs,
                    config=GenerateConfig(temperature=0.0, max_tokens=self.max_tokens),
                    schema=FinalAction if must_finalize else DoctorAction,
                )
            except ModelOutputError as exc:
                # Malformed JSON is worth a repair; if every try fails the error propagates,
                # so the sample is recorded as failed (and retried), never as an abstention.
                # An unreachable or misconfigured model (ModelUnavailable, ModelNotConfigured)
                # is not repaired: it propagates at once so the runner records it as such.
                failure = exc
                msgs = msgs + [user(f"Your answer was not valid: {exc}. Answer again as JSON.")]
                continue
            failure = None
            spent[0] += out.latency_ms
            spent[1] += out.usage.input_tokens
            spent[2] += out.usage.output_tokens
            action = DoctorAction(question=out.parsed.question, final=out.parsed.final)
            problem = self._problem(action, must_finalize)
            if not problem:
                action = self._canonical(action)
                return DoctorTurn(action=action, latency_ms=spent[0], input_tokens=spent[1],
                                  output_tokens=spent[2], tool_turns=tool_turns)
            msgs = msgs + [assistant(out.text), user(f"That answer is not usable: {problem}. Answer again.")]
        if failure is not None:
            raise failure
        final = FinalDiagnosis(label=None, confidence=0.0, basis=f"no usable answer after repairs: {problem}")
        return DoctorTurn(action=DoctorAction(final=final), latency_ms=spent[0], input_tokens=spent[1],
                          output_tokens=spent[2], tool_turns=tool_turns)

    @staticmethod
    def _problem(action: DoctorAction, must_finalize: bool) -> str:
        if must_finalize and action.final is None:
            return "a final diagnosis is required now, not a question"
        if action.final is not None and action.final.label is not None:
            label = action.final.label.strip()
            if label.lower() != "other" and label_table.normalize_label(label) is None:
                return f"label {label!r} is not in the answer list; use one of the listed labels or 'other'"
        return ""

    @staticmethod
    def _canonical(action: DoctorAction) -> DoctorAction:
        if action.final is None or action.final.label is None:
            return action
        label = action.final.label.strip()
        canon = "other" if label.lower() == "other" else label_table.normalize_label(label)
        diff = [label_table.normalize_label(d) or d for d in action.final.differential]
        diff = [d for d in dict.fromkeys(diff) if d not in (canon, "other")][:3]  # up to three alternatives
        return DoctorAction(final=action.final.model_copy(update={"label": canon, "differential": diff}))
