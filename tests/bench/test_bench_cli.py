"""``dxgraph bench run``/``retry``/``report`` when samples fail, as a new user meets it: the
doctor model points at a 127.0.0.1 port nothing listens on. The command must say why (the
errors grouped by kind with an example), how to re-run them, and exit 1 so a script notices;
the failures stay stored exactly as before."""

from __future__ import annotations

import re
import socket

import pytest
from typer.testing import CliRunner

from dxgraph.cli import app
from dxgraph.store import Store

RUN = ["--temperaments", "neutral,choleric", "--limit", "1", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def dead(tmp_path, monkeypatch):
    """``(spec, db_url)``: a doctor spec whose server is down, no retries, a private store."""
    (tmp_path / "dxgraph.yaml").write_text("request_timeout_s: 5\nmax_retries: 0\n")
    monkeypatch.chdir(tmp_path)
    return f"openai:m@http://127.0.0.1:{_free_port()}/v1", f"sqlite:///{tmp_path / 'store.db'}"


def _kind_line(output: str, count: int, kind: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip().startswith(f"{count} {kind}: ")]
    assert len(lines) == 1, output
    return lines[0]


def test_every_sample_failing_exits_1_with_the_error_grouped_and_retry_named(dead):
    spec, url = dead
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "run", "--run-id", "down", "--doctor", spec, "--db", url, *RUN])
    assert res.exit_code == 1, res.output
    out = res.output
    assert "0/2 done, 2 failed" in out
    line = _kind_line(out, 2, "ModelError")
    assert f"{spec.split('@')[1]}/chat/completions" in line and "ConnectError" in line, line
    assert re.search(r"\(first: sample [\w-]+/(neutral|choleric)/dialogue\)$", line), line
    assert "completed 0, failed 2 of 2 samples" in out and "dxgraph bench retry down" in out
    rows = Store(url).samples("down")
    assert [r.status for r in rows] == ["error", "error"]
    assert all(r.error.startswith("ModelError: ") and r.attempts == 1 for r in rows)

    res = runner.invoke(app, ["bench", "report", "down", "--reps", "20", "--db", url])
    assert res.exit_code == 0, res.output
    assert "0/2 done, 2 failed" in res.output and _kind_line(res.output, 2, "ModelError") == line
    assert "no metrics: all samples failed (2 of 2)" in res.output
    assert "top1_accuracy" not in res.output and "–" not in res.output  # no table of blanks

    res = runner.invoke(app, ["bench", "retry", "down", "--db", url, "--no-progress"])
    assert res.exit_code == 1, res.output
    assert "this call ran 2 (2 errors)" in " ".join(res.output.split())
    assert "2 ModelError: " in res.output and "dxgraph bench retry down" in res.output
    assert [r.attempts for r in Store(url).samples("down")] == [2, 2]  # retried, still recorded


@pytest.mark.slow
def test_mixed_run_reports_both_and_metrics_of_the_completed_only(dead):
    spec, url = dead
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "run", "--run-id", "mixed", "--doctor", "rules", "--doctor", spec,
                              "--db", url, *RUN])
    assert res.exit_code == 1, res.output
    assert "2/4 done, 2 failed" in res.output and "completed 2, failed 2 of 4 samples" in res.output
    assert "ConnectError" in _kind_line(res.output, 2, "ModelError")
    store = Store(url)
    assert {r.doctor for r in store.samples("mixed", "done")} == {"rules"}
    assert {r.doctor for r in store.samples("mixed", "error")} == {spec}

    res = runner.invoke(app, ["bench", "report", "mixed", "--reps", "20", "--db", url])
    assert res.exit_code == 0, res.output
    assert "2/4 done, 2 failed" in res.output and "ConnectError" in _kind_line(res.output, 2, "ModelError")
    assert "metrics below cover the 2 completed samples only" in res.output and "top1_accuracy" in res.output


def test_a_shard_answers_for_its_own_failures_only(dead):
    spec, url = dead
    runner = CliRunner()
    args = ["bench", "run", "--run-id", "sh", "--doctor", spec, "--db", url, "--temperaments", "neutral",
            "--limit", "1", "--no-progress", "--shard"]
    first = {i: runner.invoke(app, [*args, f"{i}/2"]) for i in (0, 1)}  # one sample: one shard owns it
    assert sorted(r.exit_code for r in first.values()) == [0, 1], {i: r.output for i, r in first.items()}
    owner = next(i for i, r in first.items() if r.exit_code == 1)
    assert "1 ModelError: " in first[owner].output
    assert f"failed 1 of 1 samples (1 in shard {owner}/2; the failures are stored)" in first[owner].output
    other = runner.invoke(app, [*args, f"{1 - owner}/2"])  # nothing of its own failed: exit 0
    assert other.exit_code == 0, other.output
    assert f"shard {1 - owner}/2 completed all its samples; the run's failed samples (1) are in other shards" \
        in other.output and "ModelError" not in other.output
