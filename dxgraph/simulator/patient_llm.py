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
from dxgraph.simulator.patient import PatientReply, persona_prompt, persona_style
from dxgraph.types import Case, Turn

__all__ = ["PatientOutput", "LLMPatient", "HumanPatient"]


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
    "- Answer only what the doctor asks; tell a fact only when a question asks about it.\n"
    "- Use only the facts below. If asked something they do not cover, say you do not know.\n"
    "- You do not know your diagnosis. Never name, guess or suggest a diagnosis or disease.\n"
    "- List in revealed_fact_ids the ids of the facts your reply tells.\n"
    "- Set end_consultation to true only when the doctor has given a final diagnosis or "
    "says goodbye; otherwise false.\n"
    "Answer as JSON: {\"reply\": str, \"revealed_fact_ids\": [str], \"end_consultation\": bool}."
)


class LLMPatient:
    """A model playing the persona over the case's facts.

    Args:
        model: the patient model.
        max_tokens: reply budget per turn.
    """

    def __init__(self, model: ChatModel, *, max_tokens: int = 300):
        self.model = model
        self.spec = getattr(model, "spec", "llm")
        self.max_tokens = max_tokens
        self.disclosed: dict[str, int] = {}
        self._messages: list[Message] = []
        self._fact_ids: set[str] = set()
        self._schema: type[PatientOutput] = PatientOutput
        self._turn = 0
        self._seed = 0
        self._case: Case | None = None

    def reset(self, case: Case, persona, seed: int = 0) -> Turn:
        """Build the persona prompt (facts only) and open with the chief complaint."""
        self._case = case
        self._seed = seed
        self._turn = 0
        self.disclosed = {}
        self._fact_ids = {f.id for f in case.facts}
        self._schema = _output_for(tuple(sorted(self._fact_ids)))
        who = ", ".join(
            x for x in (f"{case.age} years old" if case.age else "", case.sex or "") if x
        )
        facts = "\n".join(f"- [{f.id}] ({f.category}) {f.text}" for f in case.facts)
        prompt = (
            f"{_PATIENT_RULES}\n\n{persona_prompt(persona)}\n\n"
            f"About you{f' ({who})' if who else ''}.\nWhy you came: {case.chief_complaint}\n"
            f"Facts you know (tell them only when asked):\n{facts or '- (none)'}"
        )
        opening = persona_style(persona).opening(case.chief_complaint, random.Random(seed))
        self._messages = [system(prompt), assistant(opening)]
        return Turn(index=0, role="patient", text=opening)

    async def step(self, doctor_text: str, images_shown: bool = False) -> PatientReply:
        """Send the doctor's message; keep only revealed ids that are real facts."""
        if self._case is None:
            raise InputError("LLMPatient.step called before reset(case, persona)")
        self._turn += 1
        note = " (The doctor can now see the photo you sent.)" if images_shown else ""
        self._messages.append(user(f"Doctor: {doctor_text}{note}"))
        out = await self.model.generate(
            list(self._messages),
            config=GenerateConfig(
                temperature=0.7, max_tokens=self.max_tokens, seed=self._seed + self._turn
            ),
            schema=self._schema,
        )
        parsed: PatientOutput = out.parsed
        revealed = [fid for fid in dict.fromkeys(parsed.revealed_fact_ids) if fid in self._fact_ids]
        for fid in revealed:
            self.disclosed.setdefault(fid, self._turn)
        self._messages.append(assistant(parsed.reply))
        return PatientReply(
            text=parsed.reply,
            revealed=revealed,
            end=parsed.end_consultation,
            latency_ms=out.latency_ms,
            input_tokens=out.usage.input_tokens,
            output_tokens=out.usage.output_tokens,
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
