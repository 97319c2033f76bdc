"""Leak guards of a benchmark run (issue 13, defects 1 and 4): no run on the rule doctor's
own knowledge base without an explicit flag, and then a mark on the run and every report;
no case id a doctor or a trace could read the label from."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dxgraph.agents.doctor import CaseView
from dxgraph.cli import app
from dxgraph.simulator.cases import load_cases
from dxgraph.store import Store
from tests.subprocess_cli import one_error, run_cli

RUN = ["--temperaments", "neutral", "--limit", "2", "--strategy", "single", "--no-progress"]


def test_a_run_on_the_knowledge_base_is_refused_with_the_flag_named(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    res = run_cli("bench", "run", "--run-id", "leak", "--split", "train", *RUN, "--db", url)
    line = one_error(res)
    assert "knowledge base" in line and "--allow-train-overlap" in line
    assert Store(url).get_run("leak") is None  # refused before anything is stored


def test_with_the_flag_the_run_and_every_report_say_evaluated_on_training_cases(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "run", "--run-id", "leak", "--split", "train", *RUN,
                              "--allow-train-overlap", "--db", url])
    assert res.exit_code == 0, res.output
    assert "EVALUATED ON TRAINING CASES" in res.output
    rep = json.loads(runner.invoke(app, ["bench", "report", "leak", "--json", "--reps", "10", "--db", url]).output)
    assert rep["evaluated_on_training_cases"] == 2
    assert "EVALUATED ON TRAINING CASES" in runner.invoke(app, ["bench", "report", "leak", "--reps", "10",
                                                                "--db", url]).output
    html_file = tmp_path / "r.html"
    runner.invoke(app, ["bench", "report", "leak", "--html", str(html_file), "--reps", "10", "--db", url])
    assert "EVALUATED ON TRAINING CASES" in html_file.read_text()


def test_a_test_split_run_is_not_marked(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["bench", "run", "--run-id", "t", *RUN, "--db", url]).exit_code == 0
    rep = json.loads(runner.invoke(app, ["bench", "report", "t", "--json", "--reps", "10", "--db", url]).output)
    assert rep["evaluated_on_training_cases"] == 0


def test_the_doctor_sees_an_opaque_id_that_names_no_label():
    for case in load_cases("bundled")[:20]:
        view = CaseView.from_case(case, "dialogue+image")
        assert view.case_id != case.id and case.diagnosis not in view.case_id
        assert case.id not in view.model_dump_json()
    a, b = load_cases("bundled")[:2]
    assert CaseView.from_case(a).case_id == CaseView.from_case(a, "single").case_id  # stable in a process
    assert CaseView.from_case(a).case_id != CaseView.from_case(b).case_id


async def test_the_consultation_span_carries_the_opaque_id(monkeypatch):
    from dxgraph.bench import dialogue
    from dxgraph.bench.agents import AgentFactory
    from dxgraph.simulator.personas import load_personas

    seen: dict[str, str] = {}

    class _Span:
        def set_attribute(self, key, value):
            seen[key] = value

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class _Tracer:
        def start_as_current_span(self, name):
            return _Span()

    monkeypatch.setattr(dialogue, "get_tracer", lambda: _Tracer())
    case = load_cases("bundled", split="test")[0]
    agents = AgentFactory()
    await dialogue.run_consultation(case, load_personas()["neutral"], agents.doctor("rules", "single"),
                                    agents.patient("rules"), None, strategy="single")
    assert seen["dxgraph.case_id"] == CaseView.from_case(case).case_id
    assert case.diagnosis not in seen["dxgraph.case_id"]


def test_every_report_carries_the_run_manifest_and_the_html_lists_consultations(tmp_path):
    """Issue 13, "a run manifest": stored with the run, printed in JSON, the table and HTML."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["bench", "run", "--run-id", "m", *RUN, "--db", url]).exit_code == 0
    rep = json.loads(runner.invoke(app, ["bench", "report", "m", "--json", "--reps", "10", "--db", url]).output)
    man = rep["manifest"]
    assert man["models"] == {"doctor": ["rules"], "patient": "rules", "judge": "rules"}
    assert man["strategies"] == ["single"] and man["temperaments"] == ["neutral"] and man["split"] == "test"
    assert len(man["case_set_sha256"]) == 64 and man["n_cases"] == 2 and man["seeds"]["case_draw"] == 0
    assert man["max_turns"] == 14 and man["protocol"] == "dxgraph" and man["dxgraph_version"]
    assert man["started_at"] and man["ended_at"] and man["status"] == "complete"
    table = runner.invoke(app, ["bench", "report", "m", "--reps", "10", "--db", url]).output
    assert "case_set_sha256: " + man["case_set_sha256"] in table
    html_file = tmp_path / "r.html"
    runner.invoke(app, ["bench", "report", "m", "--html", str(html_file), "--reps", "10", "--db", url])
    page = html_file.read_text()
    assert "Run manifest" in page and man["case_set_sha256"] in page
    assert page.count('data-correct="') == 2 and 'data-filter="temperament"' in page and "PATIENT: " in page
