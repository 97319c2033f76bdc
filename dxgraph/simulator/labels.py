"""The versioned label table: synonyms -> canonical diagnosis labels.

The judge decides correctness through this table so an answer is scored the same in every
run and every report can name the table version it used. Matching rules:

- Text is normalised before matching: lower case, curly apostrophes made straight, hyphens,
  underscores, slashes and runs of whitespace made one space. "Herpes-Zoster" is "herpes zoster".
- ``find_labels`` matches whole words and phrases only, never substrings: the characters on
  either side of a match must not be letters or digits. So "acne" does NOT match inside
  "acneiform" (an acneiform eruption is a description, not a diagnosis of acne), "wart" does
  not match inside "warty", and "tinea" does not match inside a longer word.
- The longest phrase wins where matches overlap: "allergic contact dermatitis" is one label,
  not also "contact dermatitis"; "herpes zoster" is shingles, not herpes; "water warts" is
  molluscum contagiosum, not warts; "seborrheic wart" is seborrheic keratosis.
- Negation is not parsed: "not acne" finds "acne". The judge reads structured answers, so
  negations only matter in free text, where an LLM equivalence check may be used instead.

``LABELS`` are the 34 labels of 3MDBench (the accuracy set); ``IMAGING_LABELS`` are the
outcomes of imaging cases tied to the built-in workflows, kept out of the 34-label metric.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dxgraph.errors import ConfigError
from dxgraph.yamlfile import load_checked

__all__ = [
    "LABELS",
    "IMAGING_LABELS",
    "ALL_LABELS",
    "LABEL_TABLE_VERSION",
    "LabelEntry",
    "LabelTable",
    "load_label_table",
    "normalize_text",
    "normalize_label",
    "find_labels",
    "synonyms",
    "suggest_label",
    "is_imaging_label",
]


class LabelEntry(BaseModel):
    """One canonical label: its group (skin, nail, eye, mouth, imaging) and its synonyms."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    group: str
    synonyms: list[str] = Field(default_factory=list)
    workflow: str | None = None


class LabelTable(BaseModel):
    """The whole table as read from YAML; built once, then queried through a compiled regex."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    labels: dict[str, LabelEntry]
    imaging_labels: dict[str, LabelEntry] = Field(default_factory=dict)

    def entries(self) -> dict[str, LabelEntry]:
        return {**self.labels, **self.imaging_labels}


_SPACE = re.compile(r"[\s_\-/]+")


def normalize_text(text: str) -> str:
    """Text as the table compares it: lower case, one space for hyphens/underscores/slashes."""
    text = (text or "").lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return _SPACE.sub(" ", text).strip()


class _Index:
    """The table compiled for lookups: phrase -> label, and one overlap-finding regex."""

    def __init__(self, table: LabelTable, source: str):
        self.table = table
        self.phrase: dict[str, str] = {}
        for label, entry in table.entries().items():
            for phrase in [label, *entry.synonyms]:
                key = normalize_text(phrase)
                owner = self.phrase.get(key)
                if owner is not None and owner != label:
                    raise ConfigError(f"synonym {phrase!r} maps to both {owner!r} and {label!r}", file=source)
                self.phrase[key] = label
        alternatives = sorted(self.phrase, key=len, reverse=True)
        body = "|".join(re.escape(p).replace(r"\ ", " ") for p in alternatives)
        # A lookahead finds every phrase at every position, overlapping ones included, so the
        # longest phrase can win globally rather than whichever the regex meets first.
        self.pattern = re.compile(rf"(?<![a-z0-9])(?=({body})(?![a-z0-9]))")


def _bundled_path() -> Path:
    return Path(str(resources.files("dxgraph.simulator").joinpath("data/labels.yaml")))


def load_label_table(path: str | Path | None = None) -> LabelTable:
    """Read and validate a label table (the bundled one by default).

    Raises:
        ConfigError: the file is not valid YAML, has unknown keys, or maps one synonym to
            two labels.
    """
    p = Path(path) if path else _bundled_path()
    try:
        data = load_checked(p.read_text(encoding="utf-8"), str(p))[0]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the label table: {exc}", file=str(p)) from None
    try:
        table = LabelTable.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"field {where!r}: {err['msg']}", file=str(p)) from None
    _Index(table, str(p))  # raises on conflicting synonyms
    return table


@lru_cache(maxsize=1)
def _index() -> _Index:
    return _Index(load_label_table(), str(_bundled_path()))


_TABLE = _index().table
LABELS: tuple[str, ...] = tuple(_TABLE.labels)
IMAGING_LABELS: tuple[str, ...] = tuple(_TABLE.imaging_labels)
ALL_LABELS: tuple[str, ...] = LABELS + IMAGING_LABELS
LABEL_TABLE_VERSION: str = _TABLE.version

_ARTICLE = re.compile(r"^(a|an|the)\s+")


def normalize_label(text: str | None) -> str | None:
    """The canonical label a diagnosis text names exactly, or None.

    The whole text must be one synonym (after normalisation, with surrounding punctuation
    and a leading article dropped): "Atopic dermatitis." -> "eczema"; "eczema of the hands"
    -> None (use ``find_labels`` for free text).
    """
    if not text:
        return None
    key = normalize_text(text).strip(" .,;:!?\"'()[]")
    key = _ARTICLE.sub("", key)
    return _index().phrase.get(key)


def find_labels(text: str | None) -> list[str]:
    """Every label the text mentions, in order of appearance (repeats kept).

    Whole words and phrases only; where matches overlap the longest wins (see the module
    docstring). ``find_labels("allergic contact dermatitis, not contact dermatitis")`` is
    ``["allergic contact dermatitis", "contact dermatitis"]``.
    """
    if not text:
        return []
    norm = normalize_text(text)
    index = _index()
    spans = [(m.start(), m.start() + len(m.group(1)), m.group(1)) for m in index.pattern.finditer(norm)]
    spans.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
    taken: list[tuple[int, int, str]] = []
    for start, end, phrase in spans:
        if all(end <= a or start >= b for a, b, _ in taken):
            taken.append((start, end, phrase))
    taken.sort()
    return [index.phrase[p] for _, _, p in taken]


def synonyms(label: str) -> list[str]:
    """The label itself and all its synonyms, normalised (for leak checks and prompts)."""
    canon = normalize_label(label)
    if canon is None:
        raise KeyError(label)
    return [p for p, lab in _index().phrase.items() if lab == canon]


def suggest_label(text: str) -> str | None:
    """The closest known label or synonym's label, for 'did you mean' messages."""
    close = difflib.get_close_matches(normalize_text(text), list(_index().phrase), n=1, cutoff=0.6)
    return _index().phrase[close[0]] if close else None


def is_imaging_label(label: str) -> bool:
    """True for the imaging-case outcomes, which are kept out of the 34-label metric."""
    return normalize_label(label) in IMAGING_LABELS
