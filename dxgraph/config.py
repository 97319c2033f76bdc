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

import difflib
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
    # Bootstrap replicates for benchmark CIs, one setting for `bench report/compare` and the
    # demo's Benchmarks tab, so one run never shows two different intervals.
    bootstrap_reps: int = Field(default=1000, ge=0, le=100_000)
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
    """Read settings from the config file (if any) and the environment.

    Raises:
        ConfigError: the file or a ``DXGRAPH_*`` variable is invalid, as one line naming the
            ``file:line`` and key, or the variable.
    """
    path = Path(path) if path else _config_path()
    data: dict = {}
    text = ""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the settings file: {exc}", file=str(path)) from None
        from dxgraph.yamlfile import load_checked, yaml_error

        try:
            loaded, _, _ = load_checked(text, str(path))
        except yaml.YAMLError as exc:
            raise yaml_error(exc, text, str(path)) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("expected a mapping at the top level", file=str(path), line=1)
        data = loaded or {}
    for section in ("models", "telemetry"):
        if section in data and data[section] is None:  # ``models:`` with every line commented out
            del data[section]
    env = os.environ
    from_env: dict[tuple, str] = {}  # setting path -> the variable that set it

    def override(loc: tuple, var: str, value) -> None:
        target = data
        for key in loc[:-1]:
            if not isinstance(target.get(key), dict):
                if target.get(key) is not None:
                    return  # the file's value is malformed; validation reports it at its line
                target[key] = {}
            target = target[key]
        target[loc[-1]] = value
        from_env[loc] = var

    for key in ("home", "database_url"):
        var = f"DXGRAPH_{key.upper()}"
        if env.get(var):
            override((key,), var, env[var])
    for role in ROLES:
        var = f"DXGRAPH_{role.upper()}_MODEL"
        if env.get(var):
            override(("models", role), var, env[var])
    if env.get("DXGRAPH_TRACE"):
        override(("telemetry", "exporter"), "DXGRAPH_TRACE", env["DXGRAPH_TRACE"])
    if env.get("DXGRAPH_TRACE_CONTENT"):
        override(("telemetry", "capture_content"), "DXGRAPH_TRACE_CONTENT",
                 env["DXGRAPH_TRACE_CONTENT"] not in ("0", "false", ""))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise _settings_error(exc.errors()[0], from_env, path, text) from None


def _settings_error(err: dict, from_env: dict[tuple, str], path: Path | None, text: str) -> ConfigError:
    """One line for a pydantic error: the variable that set the value, else ``file:line: key``."""
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "literal_error":
        short = f"must be one of {err['ctx']['expected']}"
    elif err["type"] == "extra_forbidden":
        parent = Settings
        for key in loc[:-1]:
            annotation = parent.model_fields[key].annotation if key in parent.model_fields else None
            parent = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            if parent is None:
                break
        allowed = list(parent.model_fields) if parent else []
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        short = "unknown key" + (f" (did you mean {guess[0]!r}?)" if guess else "")
        short += f"; allowed here: {', '.join(allowed)}" if allowed else ""
    elif err["type"] in ("model_type", "dict_type"):
        short = "should be a mapping (indented 'key: value' lines)"
    else:
        short = err["msg"].removeprefix("Value error, ").replace("Input should be", "should be")
    var = next((v for loc_env, v in from_env.items() if loc[: len(loc_env)] == loc_env), None)
    if var is not None:
        return ConfigError(f"{var}={err['input']!r}: {short}")
    if path is None:
        return ConfigError(f"setting {field}: {short}")
    # The same key-path -> line map the workflow loader uses.
    from dxgraph.yamlfile import line_for, lines_and_duplicates

    lines, duplicates = lines_and_duplicates(text, str(path))
    # a duplicate key: name the field without a line rather than fail twice
    line = None if duplicates else line_for(lines, loc)
    return ConfigError(f"{field}: {short}", file=str(path), line=line)


def role_spec(settings: Settings, role: str) -> str | None:
    """The model spec for a role: configured, else ``rules`` where a baseline exists, else None."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    spec = getattr(settings.models, role)
    if spec:
        return spec
    return "rules" if role in RULE_ROLES else None
