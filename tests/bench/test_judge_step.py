"""Judging as a step of its own inside ``bench run`` (issue 13, defect 7): the dialogue is
stored before it is judged, so a judge that fails loses nothing; ``bench judge RUN_ID`` later
scores what is stored, through the same code path."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dxgraph.bench.grid import BenchConfig
from dxgraph.bench.judge import RUBRIC_ITEMS, LLMJudge
from dxgraph.bench.record import SampleResult
from dxgraph.bench.rejudge import judge_run
from dxgraph.bench.runner import SimulatorHarness, run_benchmark
from dxgraph.cli import app
from dxgraph.errors import InputError, ModelUnavailable
from dxgraph.models.scripted import ScriptedModel
from dxgraph.store import Store

JUDGE = "openai:judge@http://127.0.0.1:9/v1"


def _rubric(messages):
    rubric = {k: {"score": 1, "reason": "ok"} for k in RUBRIC_ITEMS if k != "overall"}
    rubric["overall"] = {"rating": "satisfactory", "reason": "ok"}
    return rubric


def _down(messages):
    raise ModelUnavailable("endpoint 'judge' failed after 4 attempts: connection refused")


async def test_a_failing_judge_keeps_the_dialogue_and_bench_judge_scores_it_later(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(url)
    config = BenchConfig(run_id="j", judge=JUDGE, strategies=["dialogue"], temperaments=["neutral"], limit=2)
    summary = await run_benchmark(config, store, progress=False,
                                  harness=SimulatorHarness(config, models={JUDGE: ScriptedModel(_down)}))
    assert summary.judge_errors == 2 and summary.samples_done == 2
    rows = store.samples("j", "done")
    assert len(rows) == 2
    for row in rows:
        rec = SampleResult.from_json(row.result_json)
        assert rec.judge is None and "ModelUnavailable" in rec.judge_error
        turns = store.turns("j", row.key)
        assert [t.role for t in turns][:2] == ["patient", "doctor"] and len(turns) >= 3  # the transcript is kept
    rep = json.loads(CliRunner().invoke(app, ["bench", "report", "j", "--json", "--reps", "10", "--db", url]).output)
    assert rep["unjudged"] == 2
    assert rep["metrics"]["overall"]["top1_accuracy_all_assigned"]["value"] == 0.0  # not scored as answers
    assert rep["metrics"]["overall"]["failure_rate"]["value"] == 1.0

    # Still down: resuming the run tries again and keeps them stored, unjudged.
    again = await run_benchmark(config, store, progress=False,
                                harness=SimulatorHarness(config, models={JUDGE: ScriptedModel(_down)}))
    assert (again.ran, again.judge_errors) == (0, 2)
    # The judge is back: `bench judge RUN_ID` (name "run") fills the run's own verdicts.
    assert await judge_run(store, "j", LLMJudge(ScriptedModel(_rubric)), "run") == 2
    for row in store.samples("j", "done"):
        rec = SampleResult.from_json(row.result_json)
        assert rec.judge is not None and rec.judge_error is None
        assert rec.judge.rubric["medical_history"] == 1.0
    assert await judge_run(store, "j", LLMJudge(ScriptedModel(_down)), "run") == 0  # nothing left to fill
    rep = json.loads(CliRunner().invoke(app, ["bench", "report", "j", "--json", "--reps", "10", "--db", url]).output)
    assert rep["unjudged"] == 0 and rep["metrics"]["overall"]["failure_rate"]["value"] == 0.0


async def test_resuming_the_run_judges_what_its_judge_missed(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    config = BenchConfig(run_id="r", judge=JUDGE, strategies=["single"], temperaments=["neutral"], limit=2)
    await run_benchmark(config, store, progress=False,
                        harness=SimulatorHarness(config, models={JUDGE: ScriptedModel(_down)}))
    back = await run_benchmark(config, store, progress=False,
                               harness=SimulatorHarness(config, models={JUDGE: ScriptedModel(_rubric)}))
    assert (back.ran, back.judge_errors) == (0, 0)
    assert all(SampleResult.from_json(r.result_json).judge is not None for r in store.samples("r", "done"))


def test_the_cli_says_how_to_fill_and_refuses_another_judge_under_the_runs_name(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(url)
    config = BenchConfig(run_id="k", judge=JUDGE, strategies=["single"], temperaments=["neutral"], limit=1)
    import asyncio

    asyncio.run(run_benchmark(config, store, progress=False,
                              harness=SimulatorHarness(config, models={JUDGE: ScriptedModel(_down)})))
    text = CliRunner().invoke(app, ["bench", "report", "k", "--reps", "10", "--db", url]).output
    assert "not judged yet" in text and "dxgraph bench judge k" in text
    res = CliRunner().invoke(app, ["bench", "judge", "k", "--judge", "rules", "--name", "run", "--db", url])
    assert isinstance(res.exception, InputError) and "was judged by" in str(res.exception)  # main() makes it exit 2
    res = CliRunner().invoke(app, ["bench", "judge", "k", "--judge", "rules", "--db", url])
    assert res.exit_code == 0 and "as 'rules'" in res.output  # another judge, stored beside
