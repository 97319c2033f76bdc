"""A failed sample stores which kind of model failure it was, so the report can group them:
a model server answering 500s is ``ModelUnavailable``, one answering garbage ``ModelOutputError``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dxgraph.cli import app
from dxgraph.store import Store
from dxgraph.testing.stub_server import StubServer

RUN = ["--temperaments", "neutral,choleric", "--limit", "1", "--max-turns", "2", "--no-progress"]


@pytest.fixture()
def db_url(tmp_path, monkeypatch):
    (tmp_path / "dxgraph.yaml").write_text("request_timeout_s: 5\nmax_retries: 1\n")
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.mark.parametrize(("server", "kind"), [
    (dict(fail_rate=1.0), "ModelUnavailable"),
    (dict(responder=lambda body: "I think it is probably a rash of some kind."), "ModelOutputError"),
])
def test_failed_samples_store_and_report_the_kind_of_model_failure(db_url, server, kind):
    runner = CliRunner()
    with StubServer(**server) as stub:
        spec = f"openai:stub@{stub.base_url}"
        res = runner.invoke(app, ["bench", "run", "--run-id", "k", "--doctor", spec, "--db", db_url, *RUN])
    assert res.exit_code == 1, res.output
    rows = Store(db_url).samples("k")
    assert len(rows) == 2 and all(r.status == "error" and r.error.startswith(f"{kind}: ") for r in rows), \
        [r.error for r in rows]
    res = runner.invoke(app, ["bench", "report", "k", "--reps", "20", "--db", db_url])
    assert res.exit_code == 0, res.output
    assert any(line.strip().startswith(f"2 {kind}: ") for line in res.output.splitlines()), res.output
