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
    "BenchConfig",
    "GridSample",
    "Shard",
    "build_grid",
    "parse_shard",
    "sample_key",
    "shard_of",
]

STRATEGIES: tuple[str, ...] = ("single", "dialogue", "dialogue+image", "dialogue+image+tools")
# Fields that define which samples a run holds; the rest (concurrency, shard, timeout) may
# change between resumes of the same run.
_GRID_FIELDS = ("cases", "split", "doctors", "patient", "judge", "strategies", "temperaments",
                "limit", "max_turns")


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
        limit: keep the first N cases (sorted by id) of the split.
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

    @field_validator("shard")
    @classmethod
    def _valid_shard(cls, value: str | None) -> str | None:
        return None if value in (None, "") else str(parse_shard(value))

    @field_validator("cases")
    @classmethod
    def _absolute_dir(cls, value: str) -> str:
        # A folder is stored absolute so a resume from another working directory finds it.
        if value != "bundled" and Path(value).exists():
            return str(Path(value).resolve())
        return value

    def grid_identity(self, temperaments: list[str]) -> dict[str, Any]:
        """The fields that fix the set of sample keys, with temperaments resolved."""
        data = {name: getattr(self, name) for name in _GRID_FIELDS}
        data["temperaments"] = list(temperaments)
        return data

    def shard_spec(self) -> Shard:
        return parse_shard(self.shard)


@dataclass(frozen=True)
class GridSample:
    key: str
    case: Case
    temperament: str
    strategy: str
    doctor: str


def build_grid(config: BenchConfig, cases: list[Case], temperaments: list[str]) -> list[GridSample]:
    """Every sample of the run in a fixed order (case, temperament, strategy, doctor)."""
    chosen = sorted(cases, key=lambda c: c.id)
    if config.limit is not None:
        chosen = chosen[: config.limit]
    if not chosen:
        where = config.cases + (f" (split {config.split!r})" if config.split else "")
        raise InputError(f"no cases to run in {where!r}; check --cases and --split")
    return [
        GridSample(sample_key(c.id, t, s, d), c, t, s, d)
        for c in chosen for t in temperaments for s in config.strategies for d in config.doctors
    ]
