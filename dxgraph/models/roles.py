"""One way to build a role's model: every entry point (benchmark, demo, CLI, ``diagnose``,
the tool server) asks here, so a role's model is built with the same settings everywhere.

Before this module there were five builders, and two of them differed: one passed endpoint
settings to an in-process ``local:`` model (which takes none) and one built the narrator
without the configured timeout and retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dxgraph.errors import ConfigError
from dxgraph.models import ChatModel, load_model, parse_spec

if TYPE_CHECKING:
    from dxgraph.config import Settings

__all__ = ["ModelPool", "for_role", "model_for_spec", "provider_kwargs"]

# Specs that name no language model: 'rules' selects the offline baselines, 'scripted' is
# built in code. A role configured with either has no ChatModel.
NO_MODEL = ("rules", "scripted")


def provider_kwargs(provider: str, settings: Settings) -> dict[str, Any]:
    """The constructor options a provider takes from settings (concurrency, timeouts, retries)."""
    if provider == "openai":
        return {
            "max_concurrency": settings.max_concurrency,
            "timeout_s": settings.request_timeout_s,
            "max_retries": settings.max_retries,
        }
    return {}  # an in-process model has no endpoint to limit or retry


def model_for_spec(spec: str, settings: Settings | None = None) -> ChatModel:
    """The ChatModel a spec names, with the endpoint settings of ``settings`` (default: loaded).

    Raises:
        ConfigError: the spec is malformed or names no language model (``rules``, ``scripted``).
    """
    provider = parse_spec(spec)[0]
    if provider == "openai" and settings is None:
        from dxgraph.config import load_settings

        settings = load_settings()
    return load_model(spec, **(provider_kwargs(provider, settings) if settings is not None else {}))


def for_role(settings: Settings, role: str) -> ChatModel | None:
    """The configured model of ``role``, or None where rules or nothing serve it."""
    from dxgraph.config import role_spec

    spec = role_spec(settings, role)
    if not spec or spec in NO_MODEL:
        return None
    return model_for_spec(spec, settings)


class ModelPool:
    """Chat models built once per spec and shared, so one endpoint's connection pool and
    concurrency limiter cover every agent that uses it.

    Args:
        settings: the settings whose endpoint options apply (default: loaded when first needed).
        by_spec: ready-made models by spec (tests pass ``ScriptedModel`` or a mock-transport client).
        by_role: ready-made models by role, used before the role's configured spec.
    """

    def __init__(self, settings: Settings | None = None, *, by_spec: dict[str, Any] | None = None,
                 by_role: dict[str, Any] | None = None):
        self._settings = settings
        self._given = dict(by_spec or {})
        self._by_role = dict(by_role or {})
        self._built: dict[str, ChatModel] = {}

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from dxgraph.config import load_settings

            self._settings = load_settings()
        return self._settings

    def spec(self, role: str) -> str | None:
        from dxgraph.config import role_spec

        return role_spec(self.settings, role)

    def get(self, spec: str) -> ChatModel:
        """The model for ``spec``, built on first use."""
        if spec in self._given:
            return self._given[spec]
        if spec in NO_MODEL:
            raise ConfigError(f"model spec {spec!r} names no language model")
        if spec not in self._built:
            self._built[spec] = model_for_spec(spec, self.settings if parse_spec(spec)[0] == "openai" else None)
        return self._built[spec]

    def for_role(self, role: str) -> ChatModel | None:
        """The role's model (given, else configured), or None where rules or nothing serve it."""
        if role in self._by_role:
            return self._by_role[role]
        spec = self.spec(role)
        if not spec or spec in NO_MODEL:
            return None
        return self.get(spec)

    async def aclose(self) -> None:
        """Close the models this pool built (given ones belong to the caller)."""
        for model in self._built.values():
            await model.aclose()
        self._built.clear()
