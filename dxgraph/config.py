"""Settings: which model serves each role, where results are stored, what is traced.

Read from ``dxgraph.yaml`` (in the working directory, or the file named by
``DXGRAPH_CONFIG``), then overridden by environment variables:

=============================  ==============================================
``DXGRAPH_<ROLE>_MODEL``       model spec for planner, doctor, patient, judge, vlm
``DXGRAPH_DATABASE_URL``       SQLAlchemy URL of the store (default: SQLite file)
``DXGRAPH_HOME``               where the SQLite file, cache and outputs live
``DXGRAPH_TRACE``              ``none`` | ``console`` | ``otlp`` | ``memory``
``DXGRAPH_TRACE_CONTENT``      ``1`` puts message content into spans (off by default)
``DXGRAPH_API_KEY``            bearer token for OpenAI-compatible servers
=============================  ==============================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dxgraph.errors import ConfigError

__all__ = ["ROLES", "RULE_ROLES", "Settings", "load_settings", "role_spec"]

Role = Literal["planner", "doctor", "patient", "judge", "vlm"]
ROLES: tuple[str, ...] = ("planner", "doctor", "patient", "judge", "vlm")
# Roles that have an offline, deterministic rule baseline and so default to ``rules``.
RULE_ROLES: frozenset[str] = frozenset({"doctor", "patient", "judge"})


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    planner: str | None = None
    doctor: str | None = None
    patient: str | None = None
    judge: str | None = None
    vlm: str | None = None


class TelemetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exporter: Literal["none", "console", "otlp", "memory"] = "none"
    capture_content: bool = False
    service_name: str = "dxgraph"


class Settings(BaseModel):
    """All of dxgraph's settings. Unknown keys in ``dxgraph.yaml`` are errors."""

    model_config = ConfigDict(extra="forbid")
    home: Path = Field(default_factory=lambda: Path.home() / ".dxgraph")
    database_url: str | None = None
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    max_concurrency: int = Field(default=16, ge=1, le=1024)
    request_timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    tools: dict[str, dict] = Field(default_factory=dict)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'dxgraph.db'}"


def _config_path() -> Path | None:
    env = os.environ.get("DXGRAPH_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"DXGRAPH_CONFIG points to {env!r}, which is not a file")
        return path
    path = Path("dxgraph.yaml")
    return path if path.is_file() else None


def load_settings(path: str | Path | None = None) -> Settings:
    """Read settings from the config file (if any) and the environment."""
    path = Path(path) if path else _config_path()
    data: dict = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(
                f"not valid YAML: {getattr(exc, 'problem', exc)}",
                file=str(path),
                line=mark.line + 1 if mark else None,
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("expected a mapping at the top level", file=str(path), line=1)
        data = loaded or {}
    env = os.environ
    if env.get("DXGRAPH_HOME"):
        data["home"] = env["DXGRAPH_HOME"]
    if env.get("DXGRAPH_DATABASE_URL"):
        data["database_url"] = env["DXGRAPH_DATABASE_URL"]
    models = dict(data.get("models") or {})
    for role in ROLES:
        value = env.get(f"DXGRAPH_{role.upper()}_MODEL")
        if value:
            models[role] = value
    data["models"] = models
    telemetry = dict(data.get("telemetry") or {})
    if env.get("DXGRAPH_TRACE"):
        telemetry["exporter"] = env["DXGRAPH_TRACE"]
    if env.get("DXGRAPH_TRACE_CONTENT"):
        telemetry["capture_content"] = env["DXGRAPH_TRACE_CONTENT"] not in ("0", "false", "")
    data["telemetry"] = telemetry
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"setting {where!r}: {err['msg']}", file=str(path) if path else None) from None


def role_spec(settings: Settings, role: str) -> str | None:
    """The model spec for a role: configured, else ``rules`` where a baseline exists, else None."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    spec = getattr(settings.models, role)
    if spec:
        return spec
    return "rules" if role in RULE_ROLES else None
