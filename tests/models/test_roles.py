"""Every role built from every spec kind through every entry point gives the same thing.

Before ``dxgraph.models.roles`` a role's model was built five ways: the demo passed endpoint
settings to an in-process ``local:`` model (which raised), and the CLI built the narrator
without the configured timeout and retries.
"""

from __future__ import annotations

import pytest

from dxgraph.config import ROLES, Settings
from dxgraph.models.local import LocalModel
from dxgraph.models.openai_compat import OpenAICompatModel
from dxgraph.models.roles import ModelPool, for_role, model_for_spec

OPENAI = "openai:stub@http://127.0.0.1:9/v1"
SPECS = {"openai": OPENAI, "local": "local:smollm2", "rules": "rules", "unset": None}


def _settings(tmp_path, spec):
    return Settings(home=tmp_path, models={role: spec for role in ROLES},
                    request_timeout_s=0.25, max_retries=2, max_concurrency=5)


def _check(model, kind: str, role: str) -> None:
    if kind == "openai":
        inner = model.inner  # inside the tracing wrapper
        assert isinstance(inner, OpenAICompatModel)
        assert (inner.timeout_s, inner.max_retries, inner.max_concurrency) == (0.25, 2, 5)
    elif kind == "local":
        assert isinstance(model.inner, LocalModel)
    else:
        assert model is None, (kind, role)


@pytest.mark.parametrize("kind", list(SPECS))
@pytest.mark.parametrize("role", ROLES)
async def test_for_role_and_pool_agree(tmp_path, kind, role):
    settings = _settings(tmp_path, SPECS[kind])
    _check(for_role(settings, role), kind, role)
    pool = ModelPool(settings)
    built = pool.for_role(role)
    _check(built, kind, role)
    assert pool.for_role(role) is built  # built once, shared
    await pool.aclose()


@pytest.mark.parametrize("kind", list(SPECS))
async def test_the_demo_builds_each_role_like_the_benchmark(tmp_path, kind):
    from dxgraph.agents.baselines import RuleDoctor
    from dxgraph.agents.doctor import LLMDoctor
    from dxgraph.bench.grid import BenchConfig
    from dxgraph.bench.judge import LLMJudge, RuleJudge
    from dxgraph.bench.runner import SimulatorHarness
    from dxgraph.simulator.patient import RulePatient
    from dxgraph.simulator.patient_llm import LLMPatient
    from dxgraph.store import Store
    from dxgraph.ui.services import Services

    settings = _settings(tmp_path, SPECS[kind])
    services = Services(settings, store=Store(f"sqlite:///{tmp_path / 'ui.db'}"))
    try:
        for role in ROLES:
            _check(services.model(role), kind, role)
        llm = kind in ("openai", "local")
        assert isinstance(services.doctor("dialogue"), LLMDoctor if llm else RuleDoctor)
        assert isinstance(services.patient(), LLMPatient if llm else RulePatient)
        assert isinstance(services.judge(), LLMJudge if llm else RuleJudge)
        if llm:
            spec = SPECS[kind]
            harness = SimulatorHarness(BenchConfig(run_id="x", doctors=[spec], patient=spec, judge=spec),)
            harness.agents.pool._settings = settings
            doctor = harness.agents.doctor(spec, "dialogue")
            assert isinstance(doctor, LLMDoctor)
            _check(doctor.model, kind, "doctor")
            assert isinstance(harness.agents.patient(spec), LLMPatient)
            assert isinstance(harness.agents.judge(spec), LLMJudge)
            await harness.aclose()
    finally:
        services.close()


@pytest.mark.parametrize("kind", list(SPECS))
def test_cli_and_diagnose_build_the_planner_and_vlm_the_same_way(tmp_path, monkeypatch, kind):
    from dxgraph.agents.diagnose import default_runner
    from dxgraph.cli.workflows import _narrator

    spec = SPECS[kind]
    (tmp_path / "dxgraph.yaml").write_text(
        "request_timeout_s: 0.25\nmax_retries: 2\nmax_concurrency: 5\n"
        + (f"models:\n  planner: '{spec}'\n  vlm: '{spec}'\n" if spec else ""), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DXGRAPH_HOME", str(tmp_path / "home"))
    for role in ROLES:
        monkeypatch.delenv(f"DXGRAPH_{role.upper()}_MODEL", raising=False)
    _check(_narrator(), kind, "planner")  # the narrator used to skip timeout and retries
    _check(default_runner().context.models.get("vlm"), kind, "vlm")


def test_a_spec_that_names_no_model_is_refused_with_a_reason():
    from dxgraph.errors import ConfigError

    for spec in ("rules", "scripted"):
        with pytest.raises(ConfigError, match="no language model"):
            model_for_spec(spec)


@pytest.mark.parametrize("kind", ["openai", "local"])
def test_workflow_drafting_builds_the_planner_with_the_endpoint_settings(tmp_path, monkeypatch, kind):
    from dxgraph.cli.workflow_authoring import planner_model

    (tmp_path / "dxgraph.yaml").write_text("request_timeout_s: 0.25\nmax_retries: 2\nmax_concurrency: 5\n",
                                           encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    _check(planner_model(SPECS[kind]), kind, "planner")
