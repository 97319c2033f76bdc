"""``dxgraph models check ROLE``: one short prompt to a role's model, as a health check.

Before a benchmark of thousands of calls, a user wants to know in seconds that the doctor's
vLLM server answers, how fast, and with what; this sends one tiny prompt through the same
provider code (retries, tracing) the agents use and reports the outcome as plain data.
"""

from __future__ import annotations

import time
from typing import Any

from dxgraph.config import Settings, load_settings, role_spec
from dxgraph.errors import DxGraphError
from dxgraph.models import GenerateConfig, system, user
from dxgraph.models.roles import model_for_spec

__all__ = ["check_role"]

_PROMPT = [
    system("You are a concise medical assistant."),
    user("This is a connection check. Reply with one short sentence."),
]


async def check_role(role: str, settings: Settings | None = None, *, max_tokens: int = 24) -> dict[str, Any]:
    """Send one short prompt to ``role``'s model and report how it went.

    Returns:
        ``{role, spec, ok, latency_ms, output_tokens, text}``, or ``{role, spec, ok: False,
        error}`` when the role has no model, the spec is wrong or the call fails. The rule
        baseline (``rules``) makes no call and is reported as ok.

    Raises:
        ConfigError: ``role`` is not one of the roles, or the settings file is invalid.
    """
    settings = settings or load_settings()
    spec = role_spec(settings, role)
    result: dict[str, Any] = {"role": role, "spec": spec}
    if spec is None:
        env = f"DXGRAPH_{role.upper()}_MODEL"
        return {
            **result,
            "ok": False,
            "error": f"no model configured for role {role!r}: set {env}=openai:MODEL@http://HOST:PORT/v1 "
            f"{'' if role == 'vlm' else '(or local:smollm2) '}or 'models: {{{role}: ...}}' in dxgraph.yaml",
        }
    if spec == "rules":
        return {
            **result,
            "ok": True,
            "latency_ms": 0.0,
            "output_tokens": 0,
            "text": f"rule baseline in use for {role!r} (offline, no model call)",
        }
    model = None
    try:
        model = model_for_spec(spec, settings)
        start = time.perf_counter()
        out = await model.generate(list(_PROMPT), config=GenerateConfig(max_tokens=max_tokens))
        latency = (time.perf_counter() - start) * 1000
    except DxGraphError as exc:
        return {**result, "ok": False, "error": str(exc)}
    finally:
        if model is not None:
            await model.aclose()
    return {
        **result,
        "ok": True,
        "latency_ms": round(latency, 1),
        "output_tokens": out.usage.output_tokens,
        "text": out.text,
    }
