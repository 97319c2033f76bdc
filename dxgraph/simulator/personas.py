"""Patient temperaments (3MDBench's four plus a neutral control), kept in YAML.

A ``Persona`` holds the five 3MDBench axes (prose, for the LLM patient's prompt) and what the
offline rule patient needs to speak in that temperament: phrase templates and a few
behaviour knobs. Everything random is drawn from a ``random.Random`` the caller seeds, so a
consultation is reproducible.

Personas load from the bundled ``data/personas.yaml``, then from every ``*.yaml`` in
``$DXGRAPH_HOME/personas/``, then from an explicit path; a later definition of the same name
replaces an earlier one, so users can add temperaments or retune the shipped ones.
"""

from __future__ import annotations

import random
import string
from typing import Literal
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dxgraph.errors import ConfigError
from dxgraph.yamlfile import load_checked
from dxgraph.simulator import labels as label_table

__all__ = [
    "TEMPERAMENTS",
    "AXES",
    "Persona",
    "PersonaTemplates",
    "PersonaBehaviour",
    "load_personas",
    "load_persona_file",
]

TEMPERAMENTS: tuple[str, ...] = ("sanguine", "choleric", "melancholic", "phlegmatic", "neutral")
AXES: tuple[str, ...] = (
    "symptom_description",
    "asking_questions",
    "communication_style",
    "attitude_to_treatment",
    "emotional_involvement",
)
# The placeholders each template kind may use; anything else would fail at run time.
_FIELDS = {"opening": {"complaint"}, "answer": {"answer"}, "unknown": set(), "farewell": set(),
           "question_back": set(), "digression": set(), "worry": {"worry"}, "impatient": set(),
           "end_request": set()}
_REQUIRED = ("opening", "answer", "worry")


class PersonaTemplates(BaseModel):
    """Phrase lists of the rule patient's voice (see data/personas.yaml for their meaning)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    opening: list[str] = Field(default_factory=lambda: ["Hello, doctor. {complaint}"], min_length=1)
    answer: list[str] = Field(default_factory=lambda: ["{answer}"], min_length=1)
    unknown: list[str] = Field(default_factory=lambda: ["I don't know."], min_length=1)
    farewell: list[str] = Field(default_factory=lambda: ["Thank you, doctor."], min_length=1)
    question_back: list[str] = Field(default_factory=list)
    digression: list[str] = Field(default_factory=list)
    worry: list[str] = Field(default_factory=lambda: ["I'm scared this could come next: {worry}"], min_length=1)
    impatient: list[str] = Field(default_factory=lambda: ["I already told you that."], min_length=1)
    end_request: list[str] = Field(default_factory=lambda: ["Can we wrap this up, please?"], min_length=1)

    @model_validator(mode="after")
    def _placeholders(self) -> PersonaTemplates:
        for kind, allowed in _FIELDS.items():
            for text in getattr(self, kind):
                try:
                    used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
                except ValueError as exc:
                    raise ValueError(f"{kind} template {text!r}: {exc}") from None
                extra = used - allowed
                if extra:
                    raise ValueError(f"{kind} template {text!r} uses {{{sorted(extra)[0]}}}; "
                                     f"allowed: {sorted(allowed) or 'none'}")
                if kind in _REQUIRED and not used:
                    raise ValueError(f"{kind} template {text!r} must contain {{{next(iter(allowed))}}}")
                found = label_table.find_labels(text)
                if found:
                    raise ValueError(f"{kind} template {text!r} names a diagnosis ({found[0]!r})")
        return self

    def get(self, key: str, default=None):
        """Dict-style access, so callers may treat templates as a mapping."""
        return getattr(self, key, default)


class PersonaBehaviour(BaseModel):
    """The disclosure policy: knobs on what the doctor can learn, applied through a seeded
    ``random.Random`` by the rule patient and, turn by turn, by the LLM patient's prompt.

    All defaults are the neutral control: matched facts told verbatim, nothing volunteered,
    withheld, transformed or added, no turn budget.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    verbosity: int = Field(default=2, ge=1, le=5, description="max matched facts told per question")
    ask_back: float = Field(default=0.0, ge=0.0, le=1.0, description="chance of a question back per answer")
    digression: float = Field(default=0.0, ge=0.0, le=1.0,
                              description="chance of an off-topic aside (no fact) per answer")
    volunteer: float = Field(default=0.0, ge=0.0, le=1.0,
                             description="chance per answer of adding one fact nobody asked about")
    direct_only: bool = Field(default=False, description="tell a fact only when a question names it, "
                              "not when it only asks about its topic ('any other symptoms?')")
    cut_short: float = Field(default=0.0, ge=0.0, le=1.0,
                             description="chance that an answer of several facts stops after the first")
    severity: Literal["none", "minimise", "amplify"] = Field(
        default="none", description="how the patient bends intensity and duration words of a told fact")
    severity_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="chance per told fact of bending it")
    worry: float = Field(default=0.0, ge=0.0, le=1.0,
                         description="chance per answer of a feared symptom the case does not have")
    patience: int | None = Field(default=None, ge=1, description="doctor turns before the patient asks to end; "
                                 "a repeated or unanswerable question costs one more")


class Persona(BaseModel):
    """One temperament: 3MDBench's five axes plus the rule patient's voice."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    symptom_description: str
    asking_questions: str
    communication_style: str
    attitude_to_treatment: str
    emotional_involvement: str
    templates: PersonaTemplates = Field(default_factory=PersonaTemplates)
    behaviour: PersonaBehaviour = Field(default_factory=PersonaBehaviour)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip().lower()
        if not v or not all(ch.isalnum() or ch in "-_" for ch in v):
            raise ValueError(f"persona name {v!r} must be letters, digits, '-' or '_'")
        return v

    def axes(self) -> dict[str, str]:
        """The five 3MDBench axes, in order."""
        return {a: getattr(self, a) for a in AXES}

    def opening(self, complaint: str, rng: random.Random) -> str:
        return rng.choice(self.templates.opening).format(complaint=complaint.strip()).strip()

    def answer(self, facts_text: str, rng: random.Random) -> str:
        """Wrap disclosed facts in the persona's voice, maybe with an aside or a question back.

        The aside and the question are drawn after the wrapper, always in the same order,
        so a given seed gives the same reply.
        """
        return self.voice(facts_text, rng)[0]

    def voice(self, facts_text: str, rng: random.Random) -> tuple[str, int]:
        """``answer`` plus the number of off-topic asides it added (for the disclosure record)."""
        text = rng.choice(self.templates.answer).format(answer=facts_text.strip()).strip()
        asides = 0
        if self.templates.digression and rng.random() < self.behaviour.digression:
            text += " " + rng.choice(self.templates.digression)
            asides = 1
        if self.templates.question_back and rng.random() < self.behaviour.ask_back:
            text += " " + rng.choice(self.templates.question_back)
        return text, asides

    def unknown(self, rng: random.Random) -> str:
        return rng.choice(self.templates.unknown)

    def farewell(self, rng: random.Random) -> str:
        return rng.choice(self.templates.farewell)


def _bundled() -> Path:
    return Path(str(resources.files("dxgraph.simulator").joinpath("data/personas.yaml")))


def load_persona_file(path: str | Path) -> dict[str, Persona]:
    """Personas from one YAML file: ``personas: {name: {...}}`` (or that mapping alone).

    Raises:
        ConfigError: not YAML, unknown keys, a missing axis, a bad template (file and persona named).
    """
    p = Path(path)
    try:
        data = load_checked(p.read_text(encoding="utf-8"), str(p))[0]
    except OSError as exc:
        raise ConfigError(f"cannot read the persona file: {exc.strerror}", file=str(p)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(p),
                          line=mark.line + 1 if mark else None) from None
    if isinstance(data, dict) and set(data) == {"personas"}:
        data = data["personas"]
    if not isinstance(data, dict) or not data:
        raise ConfigError("expected 'personas:' mapping names to persona definitions", file=str(p))
    out: dict[str, Persona] = {}
    for name, body in data.items():
        if not isinstance(body, dict):
            raise ConfigError(f"persona {name!r}: expected a mapping of fields", file=str(p))
        try:
            persona = Persona.model_validate({"name": name, **body})
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "(persona)"
            raise ConfigError(f"persona {name!r}: field {field!r}: {err['msg']}", file=str(p)) from None
        out[persona.name] = persona
    return out


def _user_files(path: str | Path | None) -> list[Path]:
    files: list[Path] = []
    from dxgraph.config import load_settings

    home_dir = load_settings().home / "personas"
    if home_dir.is_dir():
        files += sorted(home_dir.glob("*.y*ml"))
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            files += sorted(p.glob("*.y*ml"))
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"persona path {str(p)!r} is neither a YAML file nor a folder of them")
    return files


def load_personas(path: str | Path | None = None) -> dict[str, Persona]:
    """All personas by name: bundled, then ``$DXGRAPH_HOME/personas/*.yaml``, then ``path``.

    The five ``TEMPERAMENTS`` come first in that order; user-defined ones follow.
    """
    personas = load_persona_file(_bundled())
    for f in _user_files(path):
        personas.update(load_persona_file(f))
    ordered = {t: personas[t] for t in TEMPERAMENTS if t in personas}
    ordered.update({k: v for k, v in personas.items() if k not in ordered})
    return ordered
