"""The runner with the real simulator: cases, personas, agents, judge, dialogue graph."""

import json

import pytest
from typer.testing import CliRunner

from dxgraph.bench.grid import BenchConfig
from dxgraph.bench.runner import SimulatorHarness, retry, run_benchmark
from dxgraph.cli import app
from dxgraph.store import Store
from tests.bench.fakes import FlakyModel


@pytest.fixture()
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'h.db'}")


async def test_failing_model_every_sample_ends_done_or_error_and_retry_completes(store):
    model = FlakyModel(fail_rate=0.35, seed=1)
    config = BenchConfig(run_id="flaky", doctors=["flaky"], patient="flaky", judge="rules", limit=4,
                         temperaments=["neutral", "choleric", "phlegmatic"], concurrency=4,
                         sample_timeout_s=5.0)  # hangs sleep an hour; 5 s keeps a loaded CI machine from timing out healthy samples
    s = await run_benchmark(config, store, progress=False, harness=SimulatorHarness(config, {"flaky": model}))
    rows = store.samples("flaky")
    assert len(rows) == len({r.key for r in rows}) == 12 == s.samples_total
    assert {r.status for r in rows} == {"done", "error"}, [m for m in model.modes]
    errors = [r.error for r in rows if r.status == "error"]
    assert all(e.split(":")[0] in {"ModelUnavailable", "ModelOutputError", "TimeoutError"} for e in errors), errors
    assert s.status == "partial" and s.samples_failed == len(errors)
    done = json.loads(next(r for r in rows if r.status == "done").result_json)
    assert done["turns"] >= 1 and done["final"]["label"] == "acne" and done["judge"]["predicted_label"] == "acne"
    model.healthy = True
    r = await retry("flaky", store, progress=False, harness=SimulatorHarness(config, {"flaky": model}))
    assert (r.status, r.samples_done, r.samples_failed, r.ran) == ("complete", 12, 0, len(errors))


@pytest.mark.slow
def test_cli_run_with_rule_agents_then_report(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    args = ["bench", "run", "--run-id", "cli", "--limit", "2", "--temperaments", "neutral,melancholic",
            "--strategy", "dialogue", "--strategy", "single", "--db", url, "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "complete" in res.output
    rep = json.loads(runner.invoke(app, ["bench", "report", "cli", "--json", "--reps", "50", "--db", url]).output)
    assert rep["samples_total"] == rep["samples_done"] == 8 and rep["synthetic"] is True
    assert 0.0 <= rep["metrics"]["overall"]["top1_accuracy"]["value"] <= 1.0
    again = runner.invoke(app, args)
    assert "skipped 8" in again.output
