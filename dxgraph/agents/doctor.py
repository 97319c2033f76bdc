"""The dialogue doctor: strategies, what a doctor may see, and the LLM doctor.

Strategies are the conditions of 3MDBench plus ours:

=========================  ================================================================
``single``                 complaint (+ photo) -> one final answer, no dialogue
``dialogue``               questions and answers, text only
``dialogue+image``         as above, and the photo: attached for a vision model, otherwise
                           its description (``visual_findings``) stands in for it
``dialogue+image+tools``   as above, and the evidence of the diagnostic workflow (or of the
                           VLM tool on the photo) gathered before the first question
=========================  ================================================================

A doctor never sees the ``Case``: it gets a ``CaseView`` that has no diagnosis and no
differential, so no code path can leak the ground truth into a prompt. Doctors are
stateless: each ``act`` call gets the whole transcript, which is what sits in the dialogue
graph's state, so one doctor object serves many concurrent consultations.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dxgraph.agents.prompts import doctor_system_prompt, final_note, render_final
from dxgraph.errors import ModelError
from dxgraph.models.base import ChatModel, GenerateConfig, ImagePart, Message, assistant, system, user
from dxgraph.simulator import labels as label_table
from dxgraph.types import Case, FinalDiagnosis, ImageRef, Turn, opaque_case_id

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
]

Strategy = Literal["single", "dialogue", "dialogue+image", "dialogue+image+tools"]
STRATEGIES: tuple[str, ...] = ("single", "dialogue", "dialogue+image", "dialogue+image+tools")


class CaseView(BaseModel):
    """The part of a case a doctor may see under a strategy (never the label)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    case_id: str
    strategy: Strategy = "dialogue"
    age: int | None = None
    sex: str | None = None
    chief_complaint: str
    visual_findings: str = ""
    images: list[ImageRef] = Field(default_factory=list)
    workflow: str | None = None

    @property
    def sees_image(self) -> bool:
        return self.strategy != "dialogue"

    @property
    def uses_tools(self) -> bool:
        return self.strategy == "dialogue+image+tools"

    @classmethod
    def from_case(cls, case: Case, strategy: str = "dialogue") -> CaseView:
        """Copy the visible fields; the photo only where the strategy shows it."""
        if strategy not in STRATEGIES:
            from dxgraph.errors import ConfigError

            raise ConfigError(f"unknown doctor strategy {strategy!r}; use one of {list(STRATEGIES)}")
        image = strategy != "dialogue"
        return cls(
            case_id=opaque_case_id(case.id),
            strategy=strategy,
            age=case.age,
            sex=case.sex,
            chief_complaint=case.chief_complaint,
            visual_findings=case.visual_findings if image else "",
            images=list(case.images) if image else [],
            workflow=case.workflow if strategy == "dialogue+image+tools" else None,
        )


def _final_wire_schema() -> dict:
    """The final answer as a closed object whose labels are the answer list (or other/null).

    Servers that constrain decoding (vLLM's guided JSON, llama.cpp's grammars) then cannot
    produce a label outside the list, so even a small model's final answer is usable.
    """
    # imaging outcomes ("glaucoma suspect", "cardiomegaly") are answers too: the prompt lists
    # them only when a workflow's evidence is in the consultation
    labels = sorted(label_table.LABELS) + sorted(label_table.IMAGING_LABELS) + ["other"]
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "label": {"anyOf": [{"enum": labels}, {"type": "null"}]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "differential": {"type": "array", "items": {"enum": labels}, "maxItems": 3},
            "basis": {"type": "string"},
        },
        "required": ["label", "confidence", "differential", "basis"],
    }


def _action_wire_schema(schema: dict, _cls: type | None = None) -> None:
    """DoctorAction on the wire: a question object or a final object, never both."""
    schema.clear()
    schema.update({
        "title": "DoctorAction",
        "anyOf": [
            {"type": "object", "additionalProperties": False,
             "properties": {"question": {"type": "string"}}, "required": ["question"]},
            {"type": "object", "additionalProperties": False,
             "properties": {"final": _final_wire_schema()}, "required": ["final"]},
        ],
    })


def _final_action_wire_schema(schema: dict, _cls: type | None = None) -> None:
    schema.clear()
    schema.update({"title": "FinalAction", "type": "object", "additionalProperties": False,
                   "properties": {"final": _final_wire_schema()}, "required": ["final"]})


class DoctorAction(BaseModel):
    """One doctor turn: exactly one of a question or a final diagnosis.

    Its JSON schema (what a server constrains decoding to) is the two closed shapes with the
    answer list as an enum; validation stays lenient on labels so synonyms can be mapped.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_action_wire_schema)
    question: str | None = None
    final: FinalDiagnosis | None = None

    @model_validator(mode="after")
    def _one(self) -> DoctorAction:
        if (self.question is None) == (self.final is None):
            raise ValueError("give exactly one of 'question' or 'final'")
        if self.question is not None and not self.question.strip():
            raise ValueError("question is empty")
        return self


class FinalAction(DoctorAction):
    """Asked when the consultation must end: the wire schema allows only the final answer.

    Validation is DoctorAction's, so a model that still asks a question (an unconstrained
    one) is told so and repaired, then recorded as abstaining, as before.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_final_action_wire_schema)


class DoctorTurn(BaseModel):
    """A doctor's action with its cost, and any tool evidence it gathered first."""

    action: DoctorAction
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_turns: list[Turn] = Field(default_factory=list)

    @property
    def text(self) -> str:
        a = self.action
        return a.question if a.question is not None else render_final(a.final)


@runtime_checkable
class Doctor(Protocol):
    """What the dialogue graph drives. ``must_finalize`` asks for the final answer now."""

    spec: str

    async def act(
        self, view: CaseView, transcript: Sequence[Turn], *, must_finalize: bool = False
    ) -> DoctorTurn: ...


def workflow_label(text: str) -> str | None:
    """The imaging label a workflow evidence turn concludes (``_summarise_workflow``'s outcome),
    or None when it is indeterminate, unavailable or names no imaging label."""
    head = text.split(";", 1)[0]
    if not head.startswith("workflow ") or ": outcome " not in head:
        return None
    found = [lab for lab in label_table.find_labels(head.split(": outcome ", 1)[1]) if label_table.is_imaging_label(lab)]
    return found[0] if found else None


def _summarise_workflow(dx) -> str:
    parts = [f"workflow {dx.workflow!r}: outcome {dx.outcome}"]
    if dx.probability is not None:
        parts.append(f"probability {dx.probability:.2f}")
    if dx.score is not None:
        parts.append(f"evidence score {dx.score:.2f}" + (f" (threshold {dx.threshold:g})" if dx.threshold is not None else ""))
    if dx.coverage is not None:
        parts.append(f"coverage {dx.coverage:.0%} of the weight")
    for ind in dx.indicators:
        if ind.status == "ok":
            unit = f" {ind.unit}" if ind.unit else ""
            parts.append(f"{ind.id} = {ind.value}{unit} ({ind.finding}; abnormal if {ind.rule})")
        else:
            parts.append(f"{ind.id}: unavailable ({ind.error})")
    return "; ".join(parts)


class _Findings(BaseModel):
    findings: str = Field(max_length=800)


class ToolBox:
    """The tools a ``dialogue+image+tools`` doctor may call.

    The diagnostic workflow runs when the case names one and has images; otherwise the VLM
    is asked to describe the photo. A tool that fails becomes evidence saying so: the
    consultation goes on.

    Args:
        vlm: a vision-language ChatModel, or None (then the VLM tool is unavailable).
        workflow_runner: ``async (workflow_id, image_paths) -> Diagnosis``; default
            ``dxgraph.agents.diagnose.run_workflow``.
    """

    def __init__(self, vlm: ChatModel | None = None, workflow_runner=None):
        self.vlm = vlm
        self._runner = workflow_runner

    async def _run_workflow(self, workflow: str, paths: list[str]):
        if self._runner is not None:
            return await self._runner(workflow, paths)
        from dxgraph.agents.diagnose import run_workflow

        return await run_workflow(workflow, paths)

    async def evidence(self, view: CaseView) -> list[Turn]:
        """Run the tools for a case view; one ``tool`` turn per tool."""
        from dxgraph.errors import DxGraphError

        start = time.perf_counter()
        paths = [img.path for img in view.images]
        if view.workflow and paths:
            name = f"workflow:{view.workflow}"
            try:
                text = _summarise_workflow(await self._run_workflow(view.workflow, paths))
            except DxGraphError as exc:
                text = f"unavailable: {exc}"
        else:
            name = "vlm"
            text, usage = await self._ask_vlm(view)
        ms = (time.perf_counter() - start) * 1000
        return [Turn(index=0, role="tool", tool=name, text=text, latency_ms=ms)]

    async def _ask_vlm(self, view: CaseView) -> tuple[str, tuple[int, int]]:
        from dxgraph.errors import DxGraphError

        if self.vlm is None:
            return "unavailable: no VLM configured (set DXGRAPH_VLM_MODEL)", (0, 0)
        parts = [p for p in (image_part(i) for i in view.images) if p is not None]
        if not parts:
            return "unavailable: the case has no readable image", (0, 0)
        try:
            out = await self.vlm.generate(
                [
                    system("You describe clinical photographs for a doctor: lesion type, "
                           "colour, distribution, borders, surface. Do not name a diagnosis."),
                    user("Describe the visible findings in this photo.", *parts),
                ],
                config=GenerateConfig(temperature=0.0, max_tokens=250),
                schema=_Findings,
            )
        except DxGraphError as exc:
            return f"unavailable: {exc}", (0, 0)
        return out.parsed.findings, (out.usage.input_tokens, out.usage.output_tokens)


def image_part(ref: ImageRef) -> ImagePart | None:
    """The image file as an ImagePart; None when it cannot be read (the doctor goes on)."""
    path = ref.path
    try:
        if path.startswith("sample:"):
            from dxgraph.tools.imaging import resolve_image_path

            path = str(resolve_image_path(path))
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg"):
            return ImagePart(data=p.read_bytes(), mime="image/png" if suffix == ".png" else "image/jpeg")
        from dxgraph.tools.imaging import load_image, to_png_bytes

        return ImagePart(data=to_png_bytes(load_image(path)), mime="image/png")
    except Exception:  # noqa: BLE001 - an unreadable photo is not fatal to a consultation
        return None


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
        failure: ModelError | None = None
        for _ in range(self.max_repairs + 1):
            try:
                out = await self.model.generate(
                    msgs,
                    config=GenerateConfig(temperature=0.0, max_tokens=self.max_tokens),
                    schema=FinalAction if must_finalize else DoctorAction,
                )
            except ModelError as exc:
                # Malformed JSON is worth a repair; if every try fails the error propagates,
                # so the sample is recorded as failed (and retried), never as an abstention.
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
