"""The benchmark grid: its configuration, deterministic sample keys and shards.

A sample is one consultation: ``case x temperament x strategy x doctor``. Its key
``case|temperament|strategy|doctor`` is a pure function of the grid, so any process that
builds the same config builds the same keys; the store's ``(run_id, key)`` uniqueness then
makes resume, retry and many workers on one database safe. Every temperament runs on the
same cases, so temperament differences are paired.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dxgraph.errors import InputError
from dxgraph.types import Case

__all__ = [
    "STRATEGIES",
    "PROTOCOLS",
    "BenchConfig",
    "GridSample",
    "Shard",
    "build_grid",
    "read_case_ids",
    "select_cases",
    "parse_shard",
    "sample_key",
    "shard_of",
]

STRATEGIES: tuple[str, ...] = ("single", "dialogue", "dialogue+image", "dialogue+image+tools", "dialogue+hints")
PROTOCOLS: tuple[str, ...] = ("dxgraph", "3mdbench")
# Fields that define which samples a run holds; the rest (concurrency, shard, timeout) may
# change between resumes of the same run.
_GRID_FIELDS = ("cases", "split", "doctors", "patient", "judge", "strategies", "temperaments",
                "limit", "max_turns")
# Fields added later enter a run's identity only when set, so runs stored before them resume.
_OPTIONAL_GRID_FIELDS = ("seed", "case_ids", "protocol", "kb_cases", "hints")
LIMIT_DRAW = "stratified-round-robin-v1"
CLASSIFIER_SPEC = "classifier:"  # --hints classifier:PATH (bench.classifier_hints)


@dataclass(frozen=True)
class Shard:
    """Take the keys whose stable hash modulo ``count`` equals ``index``."""

    index: int = 0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None) -> Shard:
    """Parse ``I/N`` (0 <= I < N); raise InputError otherwise."""
    if text is None or text == "":
        return Shard()
    head, sep, tail = text.partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise InputError(f"shard {text!r} is not I/N with 0 <= I < N, for example '0/4'")
    return Shard(index, count)


def shard_of(key: str, count: int) -> int:
    """Stable across processes and hosts (unlike ``hash()``, which is salted per process)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def sample_key(case_id: str, temperament: str, strategy: str, doctor: str) -> str:
    return f"{case_id}|{temperament}|{strategy}|{doctor}"


class BenchConfig(BaseModel):
    """One benchmark run's settings; stored in the run row so ``retry`` can rebuild it.

    Attributes:
        run_id: the run's name; reusing it resumes the run.
        cases: ``bundled`` or a folder of case files.
        split: ``train``, ``test`` or ``None`` for all cases.
        doctors: doctor model specs (``rules`` is the offline baseline).
        patient, judge: model specs for the simulated patient and the judge.
        strategies: doctor strategies, see ``STRATEGIES``.
        temperaments: ``["all"]`` or named temperaments.
        limit: draw N cases of the split, seeded and stratified by label (``select_cases``).
        seed: the seed of the ``limit`` draw.
        case_ids: run exactly these case ids (``--cases-file``), before any ``limit``.
        allow_train_overlap: run even though evaluated cases are in the rule doctor's
            knowledge base; the run and its reports are then marked "evaluated on training
            cases". Refused otherwise (a rule doctor scores 1.000 on its own base).
        protocol: ``dxgraph`` (every case x every temperament, the test split) or ``3mdbench``
            (every case of ``cases`` once, with its own ``personality``; see ``bench.protocol``).
        kb_cases: the case set whose train split is the rule doctor's knowledge base (default:
            ``cases`` under ``dxgraph``, the bundled set under ``3mdbench``).
        hints: a CSV of classifier labels per case (``case_id,label1,label2,...``) that the
            ``dialogue+hints`` strategy puts in the doctor's context (top 3), or
            ``classifier:PATH``, a local image classifier that computes them from the
            cases' pictures (``bench.classifier_hints``).
        max_turns: doctor turns per consultation.
        concurrency: consultations in flight at once.
        shard: ``I/N`` to run one slice of the grid.
        sample_timeout_s: a consultation still running after this is recorded as an error.
    """

    model_config = ConfigDict(extra="forbid")
    run_id: str = Field(min_length=1)
    cases: str = "bundled"
    split: str | None = "test"
    doctors: list[str] = Field(default_factory=lambda: ["rules"], min_length=1)
    patient: str = "rules"
    judge: str = "rules"
    strategies: list[str] = Field(default_factory=lambda: ["dialogue"], min_length=1)
    temperaments: list[str] = Field(default_factory=lambda: ["all"], min_length=1)
    limit: int | None = Field(default=None, ge=1)
    seed: int = 0
    case_ids: list[str] | None = None
    allow_train_overlap: bool = False
    protocol: str = "dxgraph"
    kb_cases: str | None = None
    hints: str | None = None
    max_turns: int = Field(default=14, ge=1, le=200)
    concurrency: int = Field(default=8, ge=1, le=4096)
    shard: str | None = None
    sample_timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, value: list[str]) -> list[str]:
        for s in value:
            if s not in STRATEGIES:
                raise InputError(f"unknown strategy {s!r}; use one of {', '.join(STRATEGIES)}")
        return list(dict.fromkeys(value))

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        if value not in PROTOCOLS:
            raise InputError(f"unknown protocol {value!r}; use one of {', '.join(PROTOCOLS)}")
        return value

    @field_validator("shard")
    @classmethod
    def _valid_shard(cls, value: str | None) -> str | None:
        return None if value in (None, "") else str(parse_shard(value))

    @field_validator("cases", "kb_cases", "hints")
    @classmethod
    def _absolute_dir(cls, value: str | None) -> str | None:
        # A folder is stored absolute so a resume from another working directory finds it.
        folder = value[len(CLASSIFIER_SPEC):] if value is not None and value.startswith(CLASSIFIER_SPEC) else ""
        if folder and Path(folder).exists():
            return CLASSIFIER_SPEC + str(Path(folder).resolve())
        if value not in (None, "bundled") and Path(value).exists():
            return str(Path(value).resolve())
        return value

    def grid_identity(self, temperaments: list[str]) -> dict[str, Any]:
        """The fields that fix the set of sample keys, with temperaments resolved."""
        data = {name: getattr(self, name) for name in _GRID_FIELDS}
        data["temperaments"] = list(temperaments)
        if self.limit is not None:
            data["limit_draw"] = LIMIT_DRAW
            data["seed"] = self.seed
        if self.case_ids is not None:
            data["case_ids"] = list(self.case_ids)
        if self.protocol != "dxgraph":
            data["protocol"] = self.protocol
        if self.kb_cases is not None:
            data["kb_cases"] = self.kb_cases
        if self.hints is not None and self.hints.startswith(CLASSIFIER_SPEC):
            from dxgraph.models.classifier import classifier_sha256

            # The weights, not the folder's name, fix the hints (and so the samples' inputs).
            data["hints_classifier_sha256"] = classifier_sha256(self.hints[len(CLASSIFIER_SPEC):])
        elif self.hints is not None:  # the file's content, not only its name, fixes the samples
            from dxgraph.bench.protocol import file_sha256

            data["hints_sha256"] = file_sha256(self.hints)
        return data

    def knowledge_source(self) -> str:
        """The case set whose train split the rule doctor learns from."""
        if self.kb_cases is not None:
            return self.kb_cases
        return "bundled" if self.protocol == "3mdbench" else self.cases

    def shard_spec(self) -> Shard:
        return parse_shard(self.shard)


@dataclass(frozen=True)
class GridSample:
    key: str
    case: Case
    temperament: str
    strategy: str
    doctor: str


def select_cases(cases: list[Case], limit: int | None, seed: int = 0,
                 case_ids: list[str] | None = None) -> list[Case]:
    """The cases a run plays, sorted by id.

    ``case_ids`` keeps exactly those (an unknown id is an error, not a silent skip). ``limit``
    then draws N cases stratified by label: labels in a seeded order take turns giving one
    seeded-random case each, so N cases cover min(N, labels) labels and every label gets
    floor(N/L) or one more while it has cases. The first N by id (the old rule) covered
    5 labels with 10 bundled cases.
    """
    import random

    chosen = sorted(cases, key=lambda c: c.id)
    if case_ids is not None:
        by_id = {c.id: c for c in chosen}
        missing = [i for i in case_ids if i not in by_id]
        if missing:
            raise InputError(f"--cases-file names case {missing[0]!r}, which is not in the case set "
                             f"({len(missing)} unknown id(s)); check --cases and --split")
        keep = set(case_ids)
        chosen = [c for c in chosen if c.id in keep]
    if limit is None or limit >= len(chosen):
        return chosen
    rng = random.Random(seed)
    groups: dict[str, list[Case]] = {}
    for c in chosen:
        groups.setdefault(c.diagnosis, []).append(c)
    for group in groups.values():
        rng.shuffle(group)
    order = sorted(groups)
    rng.shuffle(order)
    picked: list[Case] = []
    while len(picked) < limit:
        for label in order:
            if groups[label] and len(picked) < limit:
                picked.append(groups[label].pop())
    return sorted(picked, key=lambda c: c.id)


def read_case_ids(path: str) -> list[str]:
    """One case id per line (blank lines and ``#`` comments ignored); a CSV's first column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--cases-file {path!r} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    ids = []
    for line in text.splitlines():
        item = line.split("#", 1)[0].split(",", 1)[0].strip()
        if item and item != "case_id":
            ids.append(item)
    if not ids:
        raise InputError(f"--cases-file {path!r} names no case ids; write one id per line")
    return list(dict.fromkeys(ids))


def build_grid(config: BenchConfig, cases: list[Case], temperaments: list[str]) -> list[GridSample]:
    """Every sample of the run in a fixed order (case, temperament, strategy, doctor)."""
    chosen = select_cases(cases, config.limit, config.seed, config.case_ids)
    if not chosen:
        where = config.cases + (f" (split {config.split!r})" if config.split else "")
        raise InputError(f"no cases to run in {where!r}; check --cases and --split")
    if config.protocol == "3mdbench":
        from dxgraph.bench.protocol import own_temperaments

        per_case = own_temperaments(chosen, temperaments)
        return [GridSample(sample_key(c.id, per_case[c.id], s, d), c, per_case[c.id], s, d)
                for c in chosen for s in config.strategies for d in config.doctors]
    return [
        GridSample(sample_key(c.id, t, s, d), c, t, s, d)
        for c in chosen for t in temperaments for s in config.strategies for d in config.doctors
    ]
