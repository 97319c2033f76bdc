"""The model-played and the human patient (see ``patient.py`` for the protocol and the rule patient).

Split from ``patient.py`` to keep each module small; import them from either.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time

from pydantic import BaseModel, ConfigDict, Field

from dxgraph.errors import InputError
from dxgraph.models.base import ChatModel, GenerateConfig, Message, assistant, system, user
from dxgraph.models.embeddings import Embedder
from dxgraph.simulator import labels as label_table
from dxgraph.simulator.disclosure import TurnPlan
from dxgraph.simulator.patient import PatientReply, RulePatient, persona_prompt, persona_style, split_questions
from dxgraph.types import Case, Disclosure, Turn

__all__ = ["PatientOutput", "LLMPatient", "HumanPatient", "behaviour_prompt"]


class PatientOutput(BaseModel):
    """The LLM patient's structured reply; the consultation ends only via the flag."""

    model_config = ConfigDict(extra="forbid")
    reply: str = Field(min_length=1)
    revealed_fact_ids: list[str] = Field(default_factory=list)
    end_consultation: bool = False


@functools.lru_cache(maxsize=256)
def _output_for(fact_ids: tuple[str, ...]) -> type[PatientOutput]:
    """PatientOutput whose wire schema lists this case's fact ids, every key required.

    A server that constrains decoding then cannot invent an id; validation stays that of
    PatientOutput (unknown ids from unconstrained models are dropped in ``step``).
    """

    def wire(schema: dict, _cls: type) -> None:
        ids = schema["properties"]["revealed_fact_ids"]
        if fact_ids:
            ids["items"] = {"enum": list(fact_ids)}
        else:
            ids["maxItems"] = 0
        schema["required"] = ["reply", "revealed_fact_ids", "end_consultation"]

    return type("PatientOutput", (PatientOutput,), {"model_config": ConfigDict(extra="forbid", json_schema_extra=wire)})


_PATIENT_RULES = (
    "You are a patient in a telemedicine consultation. Stay in character.\n"
    "Rules:\n"
    "- Each doctor message comes with the facts you may tell in this reply. Tell only those "
    "facts as facts; if none are given, you do not know the answer: say so in character.\n"
    "- Worries you are given are fears, not things you have: voice them as fears, never list them.\n"
    "- You do not know your diagnosis. Never name, guess or suggest a diagnosis or disease.\n"
    "- List in revealed_fact_ids the ids of the facts your reply tells.\n"
    "- Set end_consultation to true when the doctor has given a final diagnosis or says goodbye, "
    "or when you are told to ask to end; otherwise false.\n"
    "Answer as JSON: {\"reply\": str, \"revealed_fact_ids\": [str], \"end_consultation\": bool}."
)


def behaviour_prompt(persona) -> str:
    """How the persona's disclosure knobs show in speech, for the model (no blanket
    'answer only what is asked': a sanguine patient volunteers, a phlegmatic one does not)."""
    b = getattr(persona, "behaviour", None)
    if b is None:
        return ""
    lines = []
    if b.volunteer > 0:
        lines.append("You bring up things the doctor did not ask about (you are told which).")
    else:
        lines.append("You do not bring up things the doctor did not ask about.")
    if b.direct_only:
        lines.append("You tell something only when asked about that exact thing, in few words.")
    if b.cut_short > 0:
        lines.append("You keep answers short and cut details off.")
    if b.severity == "minimise":
        lines.append("You play symptoms down: milder, shorter, 'not that bad'.")
    elif b.severity == "amplify":
        lines.append("You make symptoms sound worse, longer and more frightening.")
    if b.worry > 0:
        lines.append("You voice fears about other symptoms or complications you have read about.")
    if b.digression > 0:
        lines.append("You drift into personal stories and unrelated topics.")
    if b.ask_back > 0:
        lines.append("You ask the doctor questions back.")
    if b.patience is not None:
        lines.append("Repeated or pointless questions irritate you; you want this over quickly.")
    return "How you behave:\n" + "\n".join(f"- {x}" for x in lines)


def _turn_note(plan: TurnPlan) -> str:
    """The facts (already bent by the policy) and extras this reply may carry."""
    told = [pair for a in plan.answers if a for pair in a]
    lines = ["[For this reply]"]
    if told:
        lines.append("Facts you may tell now:")
        lines += [f"- [{fid}] {text}" for fid, text in told]
    else:
        lines.append("No fact of yours answers this: you do not know.")
    if any(a is None for a in plan.answers):
        lines.append("The doctor repeats a question you answered: say so, irritated, and add nothing.")
    if plan.volunteered:
        lines.append("Also bring up, unasked:")
        lines += [f"- [{fid}] {text}" for fid, text in plan.volunteered]
    for worry in plan.worries:
        lines.append(f"Voice this fear (not a fact, do not list it): {worry}")
    if plan.end_request:
        lines.append("You have had enough: ask to end the consultation and set end_consultation to true.")
    return "\n".join(lines)


class LLMPatient:
    """A model playing the persona; the persona's disclosure policy picks, per turn, the only
    facts the model is given (and any fact to volunteer, worry or end request).

    Args:
        model: the patient model.
        max_tokens: reply budget per turn.
        embedder: for matching questions to facts (default: the shared MiniLM embedder).
        worries: feared symptoms for a worrying persona (default: as ``RulePatient``).
    """

    def __init__(self, model: ChatModel, *, max_tokens: int = 300, embedder: Embedder | None = None,
                 worries: list[str] | None = None):
        self.model = model
        self.spec = getattr(model, "spec", "llm")
        self.max_tokens = max_tokens
        self.disclosed: dict[str, int] = {}
        self._embedder = embedder
        self._worries = worries
        self._policy: RulePatient | None = None
        self._messages: list[Message] = []
        self._fact_ids: set[str] = set()
        self._schema: type[PatientOutput] = PatientOutput
        self._turn = 0
        self._seed = 0
        self._case: Case | None = None

    def reset(self, case: Case, persona, seed: int = 0) -> Turn:
        """Build the persona prompt (axes and behaviour, no facts) and open with the complaint."""
        self._case = case
        self._seed = seed
        self._turn = 0
        self.disclosed = {}
        self._fact_ids = {f.id for f in case.facts}
        self._schema = _output_for(tuple(sorted(self._fact_ids)))
        self._policy = RulePatient(self._embedder, worries=self._worries)
        self._policy.reset(case, persona, seed)
        who = ", ".join(
            x for x in (f"{case.age} years old" if case.age else "", case.sex or "") if x
        )
        prompt = (
            f"{_PATIENT_RULES}\n\n{persona_prompt(persona)}\n{behaviour_prompt(persona)}\n\n"
            f"About you{f' ({who})' if who else ''}.\nWhy you came: {case.chief_complaint}"
        )
        opening = persona_style(persona).opening(case.chief_complaint, random.Random(seed))
        self._messages = [system(prompt), assistant(opening)]
        return Turn(index=0, role="patient", text=opening)

    async def step(self, doctor_text: str, images_shown: bool = False) -> PatientReply:
        """Send the doctor's message with this turn's released facts; keep only revealed ids
        the policy released, and scan the reply for the case's label."""
        if self._case is None or self._policy is None:
            raise InputError("LLMPatient.step called before reset(case, persona)")
        self._turn += 1
        questions = split_questions(doctor_text)
        plan = self._policy.plan(questions) if questions else None
        note = " (The doctor can now see the photo you sent.)" if images_shown else ""
        extra = f"\n\n{_turn_note(plan)}" if plan is not None else ""
        self._messages.append(user(f"Doctor: {doctor_text}{note}{extra}"))
        out = await self.model.generate(
            list(self._messages),
            config=GenerateConfig(
                temperature=0.7, max_tokens=self.max_tokens, seed=self._seed + self._turn
            ),
            schema=self._schema,
        )
        parsed: PatientOutput = out.parsed
        released = set(plan.told) if plan is not None else set()
        revealed = [fid for fid in dict.fromkeys(parsed.revealed_fact_ids) if fid in released]
        for fid in revealed:
            self.disclosed.setdefault(fid, self._turn)
            self._policy.disclosed.setdefault(fid, self._turn)
        self._messages.append(assistant(parsed.reply))
        own = label_table.normalize_label(self._case.diagnosis) or self._case.diagnosis
        leaks = [lab for lab in label_table.find_labels(parsed.reply) if lab == own]
        base = plan.record if plan is not None else Disclosure()
        record = base.model_copy(update={
            "asked": [f for f in base.asked if f in revealed],
            "direct": [f for f in base.direct if f in revealed],
            "volunteered": [f for f in base.volunteered if f in revealed],
            "severity": {f: v for f, v in base.severity.items() if f in revealed},
            "words": len(parsed.reply.split()),
            "label_leaks": leaks,
        })
        return PatientReply(
            text=parsed.reply,
            revealed=revealed,
            end=parsed.end_consultation or bool(plan is not None and plan.end_request),
            latency_ms=out.latency_ms,
            input_tokens=out.usage.input_tokens,
            output_tokens=out.usage.output_tokens,
            disclosure=record,
        )


class HumanPatient:
    """A person at the keyboard (the demo). No facts, so no disclosure is tracked.

    The UI calls ``submit(text)`` when the person sends a message (``end=True`` when they
    leave); ``step`` waits for it.

    Args:
        timeout_s: how long ``step`` waits for the person before giving up (None: forever).
    """

    spec = "human"

    def __init__(self, *, timeout_s: float | None = None):
        self.timeout_s = timeout_s
        self.disclosed: dict[str, int] = {}
        self._queue: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
        self._opening = ""

    def reset(self, case: Case | None = None, persona=None, seed: int = 0, *, opening: str = "") -> Turn:
        """Start; the opening is what the person typed first (or the case's complaint)."""
        self._queue = asyncio.Queue()
        self._opening = opening or (case.chief_complaint if case else "")
        return Turn(index=0, role="patient", text=self._opening)

    def submit(self, text: str, *, end: bool = False) -> None:
        """Hand the person's message to the waiting consultation."""
        self._queue.put_nowait((text, end))

    async def step(self, doctor_text: str, images_shown: bool = False) -> PatientReply:
        start = time.perf_counter()
        try:
            text, end = await asyncio.wait_for(self._queue.get(), self.timeout_s)
        except TimeoutError:
            return PatientReply(text="(the patient left)", end=True)
        return PatientReply(text=text, end=end, latency_ms=(time.perf_counter() - start) * 1000)
