"""The disclosure policy: what a temperament lets the doctor learn, turn by turn.

A persona's ``behaviour`` knobs (``personas.PersonaBehaviour``) act on the information
channel, not only on the wording: facts are volunteered or withheld, cut short, softened or
amplified, and joined by feared symptoms the case does not have (worry distractors) or by
off-topic asides; an impatient patient past its turn budget asks to end. ``DisclosurePolicy``
turns the facts a doctor's questions matched into a ``TurnPlan``; the rule patient speaks
that plan in the persona's voice, the LLM patient is given only the plan's facts.

Every draw comes from the policy's own ``random.Random`` (seeded per sample), kept apart
from the voice's stream, so the neutral control says exactly what it said before the policy
existed and a given seed always gives the same consultation.

Severity is a transformation of a fact's text that keeps its fact id, so the judge still
knows what was disclosed. Distractors and digressions carry no fact id: they are recorded
as non-facts. No template, transformation or distractor may name a diagnosis.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from dxgraph.simulator import labels as label_table
from dxgraph.types import Case, Disclosure

__all__ = ["Match", "TurnPlan", "DisclosurePolicy", "bend_severity", "worry_candidates"]

# (fact id, score, asked directly): one fact a question matched, best first.
Match = tuple[str, float, bool]

# Word-level rewrites, applied in order; \b-anchored, case-insensitive, first letter case kept.
_MINIMISE: list[tuple[str, str]] = [
    (r"\b(very|really|extremely|terribly|quite) ", ""),
    (r"\bsevere(ly)?\b", "a bit"),
    (r"\b(intense|intensely)\b", "mild"),
    (r"\bunbearabl[ey]\b", "annoying"),
    (r"\ba lot\b", "a little"),
    (r"\b(constant|constantly|all the time)\b", "now and then"),
    (r"\bpainful\b", "a little sore"),
    (r"\bworst\b", "a bit more noticeable"),
    (r"\b(\d+|several|many|two|three|four|five|six) (weeks|months|years)\b", "a little while"),
]
_AMPLIFY: list[tuple[str, str]] = [
    (r"\b(slightly|a little|a bit|mildly|somewhat) ", "terribly "),
    (r"\bmild\b", "severe"),
    (r"\bsometimes\b", "all the time"),
    (r"\boccasional(ly)?\b", "constant"),
    (r"\bsmall\b", "big"),
    (r"\b(itch|itches|hurts|burns|aches)\b", r"\1 horribly"),
    (r"\b(\d+|a few|two|three|four|five|six) days\b", "what feels like forever"),
]
_TAIL = {"minimise": " It's not that bad, really.", "amplify": " It's getting worse and worse."}


def _sub_keep_case(pattern: str, repl: str, text: str) -> str:
    def one(m: re.Match) -> str:
        out = m.expand(repl)
        if m.group(0)[:1].isupper() and out:
            out = out[0].upper() + out[1:]
        return out

    return re.sub(pattern, one, text, flags=re.I)


def bend_severity(text: str, mode: str) -> str:
    """A told fact, minimised or amplified (``mode``: ``"minimise"`` | ``"amplify"``).

    Intensity and duration words are softened or made worse; a short remark says how the
    patient feels about it, so even a fact without such words carries the slant.

    >>> bend_severity("The itch is severe and constant.", "minimise")
    "The itch is a bit and now and then. It's not that bad, really."
    """
    rules = _MINIMISE if mode == "minimise" else _AMPLIFY
    out = text
    for pattern, repl in rules:
        out = _sub_keep_case(pattern, repl, out)
    return out.rstrip() + _TAIL[mode]


@functools.lru_cache(maxsize=1)
def _bundled_complaints() -> dict[str, tuple[str, ...]]:
    """Symptom facts of the bundled TRAIN cases by label: the typical complaints a worried
    patient has read about. Facts naming any diagnosis are left out."""
    from dxgraph.simulator.cases import load_cases

    by_label: dict[str, list[str]] = {}
    for case in load_cases("bundled", split="train"):
        for fact in case.facts:
            if fact.category == "symptom" and not label_table.find_labels(fact.text):
                by_label.setdefault(case.diagnosis, []).append(fact.text)
    return {k: tuple(v) for k, v in by_label.items()}


def worry_candidates(case: Case, complaints: dict[str, Sequence[str]] | None = None) -> list[str]:
    """Feared symptoms for ``case``: typical complaints of its differential's labels (else of
    every other label), minus anything the case itself has. Never text naming a diagnosis."""
    pool = _bundled_complaints() if complaints is None else complaints
    own_label = label_table.normalize_label(case.diagnosis) or case.diagnosis
    others = {k: v for k, v in pool.items() if (label_table.normalize_label(k) or k) != own_label}
    wanted = [lab for lab in case.differential if lab in others]
    labels = wanted or sorted(others)
    own = {f.text.strip().lower() for f in case.facts}
    out = []
    for lab in labels:
        for text in others[lab]:
            if text.strip().lower() not in own and not label_table.find_labels(text) and text not in out:
                out.append(text)
    return out


@dataclass
class _Draft:
    """The mutable turn record the plan fills in; frozen into a ``Disclosure`` at the end."""

    asked: list[str] = field(default_factory=list)
    direct: list[str] = field(default_factory=list)
    volunteered: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)
    distractors: list[str] = field(default_factory=list)
    end_request: bool = False


@dataclass
class TurnPlan:
    """What one patient turn will carry. ``answers`` holds one entry per question: the
    ``(fact id, text)`` pairs told, ``[]`` for "I don't know", or ``None`` for an impatient
    refusal (a repeated or pointless question)."""

    answers: list[list[tuple[str, str]] | None] = field(default_factory=list)
    volunteered: list[tuple[str, str]] = field(default_factory=list)
    worries: list[str] = field(default_factory=list)
    digression: bool = False
    end_request: bool = False
    record: Disclosure = field(default_factory=Disclosure)

    @property
    def told(self) -> list[str]:
        """Fact ids this turn tells, asked first then volunteered, each once."""
        ids = [fid for a in self.answers if a for fid, _ in a] + [fid for fid, _ in self.volunteered]
        return list(dict.fromkeys(ids))


class DisclosurePolicy:
    """A persona's disclosure knobs applied to one consultation.

    Args:
        case: the case (facts only are spoken; its label is never).
        behaviour: the persona's ``PersonaBehaviour`` (None: the neutral defaults).
        rng: the policy's own seeded generator.
        worries: feared symptoms to draw from (default: ``worry_candidates(case)``,
            computed only when the persona worries).
    """

    def __init__(self, case: Case, behaviour, rng: random.Random, worries: Sequence[str] | None = None):
        self.case = case
        self.b = behaviour
        self.rng = rng
        self._worries = None if worries is None else list(worries)
        self._facts = {f.id: f for f in case.facts}
        self.irritation = 0

    def _knob(self, name: str, default):
        return getattr(self.b, name, default) if self.b is not None else default

    def _worry_pool(self) -> list[str]:
        if self._worries is None:
            self._worries = worry_candidates(self.case)
        return self._worries

    def _text(self, fid: str, render: Callable[[str], str], record: _Draft) -> str:
        text = render(self._facts[fid].text)
        mode = self._knob("severity", "none")
        if mode != "none" and self.rng.random() < self._knob("severity_rate", 0.0):
            text = bend_severity(text, mode)
            record.severity[fid] = "minimised" if mode == "minimise" else "amplified"
        return text

    def plan(self, matches: Sequence[Sequence[Match]], told_before: dict[str, int],
             render: Callable[[str], str] = str) -> TurnPlan:
        """The plan for one doctor message, given each question's matched facts.

        ``told_before`` maps fact ids told in earlier turns to their turn; ``render`` turns a
        fact's text into the patient's words (first person).
        """
        plan = TurnPlan()
        rec = _Draft()
        patience = self._knob("patience", None)
        said: list[str] = []
        self.irritation += 1
        for matched in matches:
            fresh = [m for m in matched if m[0] not in said]
            if self._knob("direct_only", False):
                rec.withheld += [fid for fid, _, direct in fresh if not direct and fid not in rec.withheld]
                fresh = [m for m in fresh if m[2]]
            if patience is not None and (not fresh or all(fid in told_before for fid, _, _ in fresh)):
                self.irritation += 1  # a pointless or repeated question costs patience
                if fresh:
                    plan.answers.append(None)
                    continue
            if len(fresh) > 1 and self.rng.random() < self._knob("cut_short", 0.0):
                rec.withheld += [fid for fid, _, _ in fresh[1:] if fid not in rec.withheld]
                fresh = fresh[:1]
            told = []
            for fid, _, direct in fresh:
                said.append(fid)
                told.append((fid, self._text(fid, render, rec)))
                rec.asked.append(fid)
                if direct:
                    rec.direct.append(fid)
            plan.answers.append(told)
        if self.rng.random() < self._knob("volunteer", 0.0):
            unasked = [f.id for f in self.case.facts if f.id not in told_before and f.id not in said]
            if unasked:
                fid = self.rng.choice(unasked)
                plan.volunteered.append((fid, self._text(fid, render, rec)))
                rec.volunteered.append(fid)
        if self.rng.random() < self._knob("worry", 0.0):
            pool = [w for w in self._worry_pool() if w not in rec.distractors]
            if pool:
                worry = render(self.rng.choice(pool))
                plan.worries.append(worry)
                rec.distractors.append(worry)
        rec.withheld = [fid for fid in rec.withheld if fid not in said]
        if patience is not None and self.irritation >= patience:
            plan.end_request = rec.end_request = True
        plan.record = Disclosure(**asdict(rec))
        return plan
