"""Simulated and human patients, each an environment with ``reset`` and ``step``.

A patient knows only its case's facts (never the diagnosis or the differential) and tells
them as its temperament's disclosure policy allows (``disclosure.py``: volunteered, withheld,
cut short, softened or amplified, with worries and asides): disclosure is gated per fact and
recorded (fact id -> turn index, plus a ``Disclosure`` record per turn), so the benchmark can
report how much of each case the doctor elicited and how the patient behaved. The end of a
consultation is an explicit field (``PatientReply.end``), never a magic word in the text.

- ``RulePatient``: offline and deterministic given a seed. Each question in the doctor's
  message is matched to the facts by embedding cosine similarity; the policy decides which
  matched (and unasked) facts are told, in the first person, in the temperament's voice.
- ``LLMPatient``: a model plays the persona and answers with a JSON object
  ``{reply, revealed_fact_ids, end_consultation}``.
- ``HumanPatient``: a person types the replies (the demo).
"""

from __future__ import annotations

import random
import re
import time
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dxgraph.errors import InputError
from dxgraph.models.embeddings import Embedder, cosine_matrix, get_embedder
from dxgraph.simulator.disclosure import DisclosurePolicy, Match, TurnPlan
from dxgraph.types import Case, Disclosure, Turn

__all__ = [
    "PatientReply",
    "Patient",
    "RulePatient",
    "split_questions",
    "first_person",
    "MATCH_THRESHOLD",
    "TOPIC_QUESTIONS",
    "tune_match_threshold",
    "topic_similarity",
]

# Tuned on the TRAIN split only (``tune_match_threshold``; tests recompute it): the cosine
# above which a question is taken to ask about a fact.
MATCH_THRESHOLD = 0.25
# A question this close to a topic's prototype asks about every fact of that topic
# ("Where is it?" asks about location facts whatever their wording).
TOPIC_THRESHOLD = 0.7
# A second fact is told only if it matches nearly as well as the best one.
RELATIVE_MARGIN = 0.1

# How doctors open each topic (fact category); generic, never per label.
TOPIC_QUESTIONS: dict[str, list[str]] = {
    "symptom": ["What symptoms do you have?", "How does it feel?", "What does it look like?"],
    "onset": ["When did it start?", "How long have you had it?", "How did it begin?"],
    "location": ["Where on your body is it?", "Which part of the body is affected?"],
    "history": ["Have you had this before?", "Do you have any other medical conditions?",
                "Does anyone in your family have something similar?"],
    "medication": ["Are you taking any medicines?", "What medications do you use?"],
    "exposure": ["Have you been in contact with anything new?", "Could anything have triggered it?"],
    "treatment": ["Have you tried any treatment?", "Did anything help?"],
}


_AXES = (
    "symptom_description",
    "asking_questions",
    "communication_style",
    "attitude_to_treatment",
    "emotional_involvement",
)


_POLICY_LINES = {
    "worry": ["I'm scared this could come next: {worry}"],
    "impatient": ["I already told you that."],
    "end_request": ["Can we wrap this up, please?"],
}


def _templates(persona, key: str, default: list[str]) -> list[str]:
    """A persona's phrase list for ``key``, from its ``templates`` (dict or object)."""
    source = getattr(persona, "templates", None) or getattr(persona, "style", None)
    value = source.get(key) if isinstance(source, dict) else getattr(source, key, None)
    if isinstance(value, str):
        value = [value]
    return list(value) if value else default


class PersonaStyle:
    """The rule patient's voice: phrase lists from the persona's templates.

    Templates may contain ``{complaint}`` (opening) and ``{answer}`` (answers).
    """

    def __init__(self, persona):
        self.persona = persona
        self.name = getattr(persona, "name", None) or str(persona or "neutral")
        behaviour = getattr(persona, "behaviour", None)
        # How many matching facts this temperament tells per question (talkative sanguine
        # tells more, terse choleric fewer): the persona's own knob, 2 when it has none.
        self.verbosity = int(getattr(behaviour, "verbosity", 2) or 2)
        self.openings = _templates(persona, "opening", ["Hello doctor. {complaint}"])
        self.answers = _templates(persona, "answer", ["{answer}"])
        self.unknowns = _templates(persona, "unknown", ["I don't know."])
        self.farewells = _templates(persona, "farewell", ["Thank you, doctor."])

    def opening(self, complaint: str, rng: random.Random) -> str:
        return rng.choice(self.openings).format(complaint=complaint.strip()).strip()

    def unknown(self, rng: random.Random) -> str:
        return rng.choice(self.unknowns)

    def farewell(self, rng: random.Random) -> str:
        return rng.choice(self.farewells)

    def answer(self, parts: list[str], rng: random.Random) -> str:
        return self.voice(parts, rng)[0]

    def voice(self, parts: list[str], rng: random.Random) -> tuple[str, int]:
        """The wrapped answer and how many off-topic asides it carries."""
        if hasattr(self.persona, "voice"):  # a Persona: wrapper plus seeded asides/questions back
            return self.persona.voice(" ".join(parts), rng)
        return rng.choice(self.answers).format(answer=" ".join(parts)).strip(), 0

    def line(self, key: str, rng: random.Random, **fields) -> str:
        """One line of a template list the policy needs (worry, impatient, end_request)."""
        return rng.choice(_templates(self.persona, key, _POLICY_LINES[key])).format(**fields).strip()


def persona_style(persona) -> PersonaStyle:
    return PersonaStyle(persona)


def persona_prompt(persona) -> str:
    """The persona's five 3MDBench axes as a prompt paragraph."""
    name = getattr(persona, "name", None) or "neutral"
    lines = [f"Your temperament: {name}."]
    for axis in _AXES:
        value = getattr(persona, axis, None)
        if value:
            lines.append(f"- {axis.replace('_', ' ')}: {value}")
    return "\n".join(lines)


def topic_similarity(embedder: Embedder, qv: np.ndarray) -> list[dict[str, float]]:
    """Per question row: the best similarity to each topic's prototype questions."""
    topics = list(TOPIC_QUESTIONS)
    protos = [q for t in topics for q in TOPIC_QUESTIONS[t]]
    owner = [t for t in topics for _ in TOPIC_QUESTIONS[t]]
    sims = cosine_matrix(qv, embedder.embed(protos))
    out = []
    for row in sims:
        best: dict[str, float] = {}
        for topic, value in zip(owner, row, strict=True):
            best[topic] = max(best.get(topic, -1.0), float(value))
        out.append(best)
    return out


def tune_match_threshold(cases, embedder: Embedder | None = None) -> float:
    """The direct-match cosine threshold that best separates on-topic from off-topic pairs.

    Pairs are (a topic's prototype question, a fact) over the given cases, positive when the
    fact's category is the topic. Pass the TRAIN split only.
    """
    emb = embedder or get_embedder()
    facts = [f for c in cases for f in c.facts if f.category in TOPIC_QUESTIONS]
    if not facts:
        raise InputError("tune_match_threshold needs cases with categorised facts")
    protos = [(t, q) for t, qs in TOPIC_QUESTIONS.items() for q in qs]
    sims = cosine_matrix(emb.embed([q for _, q in protos]), emb.embed([f.text for f in facts]))
    positive = np.array([[f.category == t for f in facts] for t, _ in protos])
    best_t, best_f1 = MATCH_THRESHOLD, -1.0
    for t in np.arange(0.1, 0.8, 0.01):
        pred = sims >= t
        tp = float((pred & positive).sum())
        f1 = 2 * tp / max(1.0, float(pred.sum() + positive.sum()))
        if f1 > best_f1:
            best_t, best_f1 = round(float(t), 2), f1
    return best_t


class PatientReply(BaseModel):
    """What the patient says back to one doctor message."""

    model_config = ConfigDict(frozen=True)
    text: str
    revealed: list[str] = Field(default_factory=list)
    end: bool = False
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    disclosure: Disclosure | None = None


@runtime_checkable
class Patient(Protocol):
    """The environment interface the dialogue graph drives."""

    disclosed: dict[str, int]

    def reset(self, case: Case, persona, seed: int = 0) -> Turn: ...

    async def step(self, doctor_text: str, images_shown: bool = False) -> PatientReply: ...


_QUESTION_START = re.compile(
    r"^(tell|describe|show|explain|any|anything|do|does|did|have|has|had|is|are|was|were|"
    r"when|where|what|how|why|which|who|can|could|would|will|please)\b",
    re.I,
)


def split_questions(text: str) -> list[str]:
    """The questions in a doctor's message: sentences ending in '?' or opening like one.

    >>> split_questions("I see. Does it itch? Tell me where it is.")
    ['Does it itch?', 'Tell me where it is.']
    """
    sentences = [s.strip() for s in re.split(r"(?<=[?.!])\s+|\n+", text or "") if s.strip()]
    return [s for s in sentences if s.endswith("?") or _QUESTION_START.match(s)]


_PRONOUNS = [
    (r"\bthe patient's\b", "my"),
    (r"\bthe patient has\b", "I have"),
    (r"\bthe patient is\b", "I am"),
    (r"\bthe patient was\b", "I was"),
    (r"\bthe patient\b", "I"),
    (r"\b(he|she) has\b", "I have"),
    (r"\b(he|she) is\b", "I am"),
    (r"\b(he|she) was\b", "I was"),
    (r"\b(he|she) does\b", "I do"),
    (r"\b(he|she)\b", "I"),
    (r"\b(his|her)\b", "my"),
    (r"\bhim(self)?\b", "me"),
    (r"\bherself\b", "myself"),
]


def first_person(fact: str) -> str:
    """A fact as the patient would say it: first person, one sentence, capitalised."""
    text = fact.strip()
    swapped = 0
    for pattern, repl in _PRONOUNS:
        text, n = re.subn(pattern, repl, text, flags=re.I)
        swapped += n
    if swapped:
        # A bare "I <verb>s" left by the swaps above: "she notices" -> "I notice". Only
        # after a swap: a fact already in the first person ("I was", "I always") is kept.
        text = re.sub(r"\bI (?!was\b|always\b|guess\b|miss\b)(\w+?)(?<!s)s\b", lambda m: f"I {m.group(1)}", text)
    text = text[0].upper() + text[1:] if text else text
    if text and text[-1] not in ".!?":
        text += "."
    return text


class RulePatient:
    """Offline patient: answers from the facts as its persona's disclosure policy allows.

    Args:
        embedder: the sentence embedder (default: the shared all-MiniLM-L6-v2).
        threshold: cosine similarity for a question to count as asking about a fact.
        max_facts: at most this many facts told per question (default: the persona's
            verbosity).
        worries: feared symptoms a worrying persona draws from (default: typical complaints
            of the case's differential, from the bundled train split).
    """

    spec = "rules"

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        threshold: float = MATCH_THRESHOLD,
        max_facts: int | None = None,
        worries: list[str] | None = None,
    ):
        self.embedder = embedder or get_embedder()
        self.threshold = threshold
        self.max_facts = max_facts
        self.disclosed: dict[str, int] = {}
        self._case: Case | None = None
        self._style: PersonaStyle | None = None
        self._rng = random.Random(0)
        self._turn = 0
        self._fact_vecs = np.zeros((0, 384), dtype=np.float32)
        self._policy: DisclosurePolicy | None = None
        self.worries = worries

    def reset(self, case: Case, persona, seed: int = 0) -> Turn:
        """Start a consultation; return the opening (the complaint in the persona's voice)."""
        self._case = case
        self._style = persona_style(persona)
        self._rng = random.Random(f"{seed}:{case.id}")
        self._turn = 0
        self.disclosed = {}
        self._fact_vecs = self.embedder.embed([f.text for f in case.facts])
        self._policy = DisclosurePolicy(case, getattr(persona, "behaviour", None),
                                        random.Random(f"{seed}:{case.id}:policy"), self.worries)
        text = self._style.opening(case.chief_complaint, self._rng)
        return Turn(index=0, role="patient", text=text)

    def match(self, question: str) -> list[tuple[str, float]]:
        """The facts a question asks about, best first: ``[(fact_id, cosine), ...]``."""
        return [(fid, score) for fid, score, _ in self.match_detail(question)]

    def match_detail(self, question: str) -> list[Match]:
        """``match`` plus whether each fact was asked about directly (its own words, not
        only its topic): ``[(fact_id, score, direct), ...]``."""
        if self._case is None or not self._case.facts:
            return []
        qv = self.embedder.embed([question])
        direct = cosine_matrix(qv, self._fact_vecs)[0]
        topic = topic_similarity(self.embedder, qv)[0]
        by_topic = np.array([topic.get(f.category, -1.0) for f in self._case.facts])
        score = np.where(by_topic >= TOPIC_THRESHOLD, np.maximum(direct, by_topic), direct)
        ok = (direct >= self.threshold) | (by_topic >= TOPIC_THRESHOLD)
        best = float(score[ok].max()) if ok.any() else 0.0
        order = np.argsort(-score, kind="stable")
        limit = self.max_facts or (self._style.verbosity if self._style else 2)
        chosen = [i for i in order if ok[i] and score[i] >= best - RELATIVE_MARGIN][:limit]
        return [(self._case.facts[i].id, float(score[i]), bool(direct[i] >= self.threshold)) for i in chosen]

    def plan(self, questions: list[str]) -> TurnPlan:
        """What the persona's policy releases for these questions (the LLM patient uses it too)."""
        if self._policy is None:
            raise InputError("RulePatient.plan called before reset(case, persona)")
        return self._policy.plan([self.match_detail(q) for q in questions], self.disclosed, first_person)

    async def step(self, doctor_text: str, images_shown: bool = False) -> PatientReply:
        """Answer each question in ``doctor_text`` as the persona's disclosure policy allows;
        end when it asks nothing, ask to end when the persona's patience runs out."""
        if self._case is None:
            raise InputError("RulePatient.step called before reset(case, persona)")
        start = time.perf_counter()
        self._turn += 1
        questions = split_questions(doctor_text)
        if not questions:
            text = self._style.farewell(self._rng)
            return PatientReply(text=text, end=True, latency_ms=(time.perf_counter() - start) * 1000,
                                disclosure=Disclosure(words=len(text.split())))
        plan = self.plan(questions)
        parts: list[str] = []
        for told in plan.answers:
            if told is None:
                parts.append(self._style.line("impatient", self._rng))
            elif not told:
                parts.append(self._style.unknown(self._rng))
            else:
                parts.append(" ".join(text for _, text in told))
        parts += [text for _, text in plan.volunteered]
        parts += [self._style.line("worry", self._rng, worry=w) for w in plan.worries]
        text, asides = self._style.voice(parts, self._rng)
        if plan.end_request:
            text += " " + self._style.line("end_request", self._rng)
        said = plan.told
        for fid in said:
            self.disclosed.setdefault(fid, self._turn)
        record = plan.record.model_copy(update={"digressions": asides, "words": len(text.split())})
        return PatientReply(text=text, revealed=said, end=plan.end_request, disclosure=record,
                            latency_ms=(time.perf_counter() - start) * 1000)
