"""Judging as a step of its own (issue 13, defect 7): stored transcripts judged again by
another judge, stored beside the run's own verdicts, reported and compared by kappa."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dxgraph.bench.judge import RUBRIC_ITEMS, LLMJudge
from dxgraph.bench.record import SampleResult
from dxgraph.bench.rejudge import agreement, judge_names, judge_run
from dxgraph.cli import app
from dxgraph.errors import InputError
from dxgraph.models.scripted import ScriptedModel
from dxgraph.store import Store
from tests.subprocess_cli import one_error, run_cli

RUN = ["--temperaments", "neutral,choleric", "--limit", "3", "--strategy", "single", "--no-progress"]


@pytest.fixture(scope="module")
def run_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('rejudge') / 's.db'}"
    res = CliRunner().invoke(app, ["bench", "run", "--run-id", "r", *RUN, "--db", url])
    assert res.exit_code == 0, res.output
    return url


def test_bench_judge_adds_a_judge_beside_the_runs_and_never_overwrites(run_db):
    runner = CliRunner()
    before = {r.key: SampleResult.from_json(r.result_json).judge for r in Store(run_db).samples("r", "done")}
    res = runner.invoke(app, ["bench", "judge", "r", "--judge", "rules", "--name", "again", "--db", run_db])
    assert res.exit_code == 0, res.output
    assert "judged 6 transcripts" in res.output
    rows = Store(run_db).samples("r", "done")
    for row in rows:
        rec = SampleResult.from_json(row.result_json)
        assert rec.judge == before[row.key]  # the run's own verdict is untouched
        assert rec.judges["again"].correct == rec.judge.correct
    assert judge_names(Store(run_db), "r") == ["run", "again"]
    again = run_cli("bench", "judge", "r", "--judge", "rules", "--name", "again", "--db", run_db)
    assert "already has a judge named 'again'" in one_error(again)
    rep = json.loads(runner.invoke(app, ["bench", "report", "r", "--judge", "again", "--json", "--reps", "10",
                                         "--db", run_db]).output)
    assert rep["judge"] == "again" and rep["samples_done"] == 6
    agree = json.loads(runner.invoke(app, ["bench", "agreement", "r", "run", "again", "--json", "--reps", "50",
                                           "--db", run_db]).output)
    assert agree["samples"] == 6 and agree["correct"]["agreement"] == 1.0
    assert sum(agree["correct"]["confusion"].values()) == 6


async def test_an_llm_judge_is_compared_with_the_rule_judge_by_kappa(run_db):
    rubric = {k: {"score": 1, "reason": "ok"} for k in RUBRIC_ITEMS if k != "overall"}
    rubric["overall"] = {"rating": "excellent", "reason": "ok"}
    store = Store(run_db)
    n = await judge_run(store, "r", LLMJudge(ScriptedModel(lambda msgs: rubric)), "llm")
    assert n == 6
    out = agreement(store, "r", "run", "llm", reps=50)
    assert out["samples"] == 6
    # The table decides correctness for both, so they agree; rubric items are compared where both scored.
    assert out["correct"]["agreement"] == 1.0
    assert "medical_history" in out["rubric"] and out["rubric"]["medical_history"]["n"] == 6
    with pytest.raises(InputError, match="no judge 'nobody'"):
        agreement(store, "r", "run", "nobody")


def test_a_row_stored_before_named_judges_loads_with_none():
    old = ('{"truth": "acne", "final": {"label": "acne", "confidence": 0.7, "differential": [], "basis": ""}}')
    assert SampleResult.from_json(old).judges == {}
