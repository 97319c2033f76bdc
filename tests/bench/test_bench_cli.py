"""``dxgraph bench run``/``retry``/``report`` when samples fail, as a new user meets it: the
doctor model points at a 127.0.0.1 port nothing listens on. The command must say why (the
errors grouped by kind with an example), how to re-run them, and exit 1 so a script notices;
the failures stay stored exactly as before."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dxgraph.cli import app
from dxgraph.store import Store
from tests.subprocess_cli import DXGRAPH, ROOT, one_error, run_cli

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
    line = _kind_line(out, 2, "ModelUnavailable")
    assert f"{spec.split('@')[1]}/chat/completions" in line and "ConnectError" in line, line
    assert re.search(r"\(first: sample [\w-]+/(neutral|choleric)/dialogue\)$", line), line
    assert "completed 0, failed 2 of 2 samples" in out and "dxgraph bench retry down" in out
    rows = Store(url).samples("down")
    assert [r.status for r in rows] == ["error", "error"]
    assert all(r.error.startswith("ModelUnavailable: ") and r.attempts == 1 for r in rows)

    res = runner.invoke(app, ["bench", "report", "down", "--reps", "20", "--db", url])
    assert res.exit_code == 0, res.output
    assert "0/2 done, 2 failed" in res.output and _kind_line(res.output, 2, "ModelUnavailable") == line
    assert "no metrics: all samples failed (2 of 2)" in res.output
    assert "top1_accuracy" not in res.output and "–" not in res.output  # no table of blanks

    res = runner.invoke(app, ["bench", "retry", "down", "--db", url, "--no-progress"])
    assert res.exit_code == 1, res.output
    assert "this call ran 2 (2 errors)" in " ".join(res.output.split())
    assert "2 ModelUnavailable: " in res.output and "dxgraph bench retry down" in res.output
    assert [r.attempts for r in Store(url).samples("down")] == [2, 2]  # retried, still recorded


@pytest.mark.slow
def test_mixed_run_reports_both_and_metrics_of_the_completed_only(dead):
    spec, url = dead
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "run", "--run-id", "mixed", "--doctor", "rules", "--doctor", spec,
                              "--db", url, *RUN])
    assert res.exit_code == 1, res.output
    assert "2/4 done, 2 failed" in res.output and "completed 2, failed 2 of 4 samples" in res.output
    assert "ConnectError" in _kind_line(res.output, 2, "ModelUnavailable")
    store = Store(url)
    assert {r.doctor for r in store.samples("mixed", "done")} == {"rules"}
    assert {r.doctor for r in store.samples("mixed", "error")} == {spec}

    res = runner.invoke(app, ["bench", "report", "mixed", "--reps", "20", "--db", url])
    assert res.exit_code == 0, res.output
    assert "2/4 done, 2 failed" in res.output and "ConnectError" in _kind_line(res.output, 2, "ModelUnavailable")
    assert "metrics below cover the 2 completed samples only" in res.output and "top1_accuracy" in res.output


def test_a_shard_answers_for_its_own_failures_only(dead):
    spec, url = dead
    runner = CliRunner()
    args = ["bench", "run", "--run-id", "sh", "--doctor", spec, "--db", url, "--temperaments", "neutral",
            "--limit", "1", "--no-progress", "--shard"]
    first = {i: runner.invoke(app, [*args, f"{i}/2"]) for i in (0, 1)}  # one sample: one shard owns it
    assert sorted(r.exit_code for r in first.values()) == [0, 1], {i: r.output for i, r in first.items()}
    owner = next(i for i, r in first.items() if r.exit_code == 1)
    assert "1 ModelUnavailable: " in first[owner].output
    assert f"failed 1 of 1 samples (1 in shard {owner}/2; the failures are stored)" in first[owner].output
    other = runner.invoke(app, [*args, f"{1 - owner}/2"])  # nothing of its own failed: exit 0
    assert other.exit_code == 0, other.output
    assert f"shard {1 - owner}/2 completed all its samples; the run's failed samples (1) are in other shards" \
        in other.output and "ModelUnavailable" not in other.output


# -- bad input refused before a run exists (a real subprocess: one line, exit 2, no traceback) ------

def _cli(*args, cwd=None, env=None):
    return run_cli(*args, cwd=cwd, env=env)


_one_error = one_error


def test_report_html_path_is_checked_before_the_report_is_built(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "afile").write_text("x")
    # The run does not exist: the --html error coming first shows it was checked up front.
    line = _one_error(_cli("bench", "report", "nosuch", "--html", str(tmp_path), "--db", url))
    assert f"--html {str(tmp_path)!r} is a folder" in line
    line = _one_error(_cli("bench", "report", "nosuch", "--html", str(tmp_path / "afile" / "r.html"), "--db", url))
    assert "--html" in line and "cannot be written" in line
    if Path("/proc/self").is_dir():
        line = _one_error(_cli("bench", "report", "nosuch", "--html", "/proc/x.html", "--db", url))
        assert "'/proc/x.html' cannot be written" in line


def test_a_bad_model_spec_is_refused_before_the_run_is_created(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    line = _one_error(_cli("bench", "run", "--run-id", "t", "--doctor", "foo:bar", "--db", url, cwd=tmp_path))
    assert line.startswith("error: --doctor: model spec 'foo:bar': unknown provider 'foo'"), line
    line = _one_error(_cli("bench", "run", "--run-id", "t", "--judge", "openai:m", "--db", url, cwd=tmp_path))
    assert "--judge: model spec 'openai:m'" in line
    (tmp_path / "dxgraph.yaml").write_text("request_timeout_s: 5\nmodels:\n  patient: 'nope:x'\n")
    line = _one_error(_cli("bench", "run", "--run-id", "t", "--db", url, cwd=tmp_path))
    assert "dxgraph.yaml:3: models.patient: model spec 'nope:x'" in line, line
    line = _one_error(_cli("bench", "run", "--run-id", "t", "--db", url, cwd=tmp_path,
                           env={"DXGRAPH_PATIENT_MODEL": "scripted"}))
    assert line.startswith("error: DXGRAPH_PATIENT_MODEL: 'scripted' is built in code"), line
    assert not (tmp_path / "s.db").exists() or Store(url).get_run("t") is None  # nothing stored


def test_timeout_error_names_the_flag_the_user_typed(tmp_path):
    line = _one_error(_cli("bench", "run", "--run-id", "t", "--timeout", "-1", "--db", f"sqlite:///{tmp_path / 's.db'}"))
    assert line.startswith("error: --timeout: ") and "sample-timeout" not in line, line


def test_rule_doctor_on_cases_without_train_split_is_refused_up_front(tmp_path):
    rows = {"k1": {"general_complaint": "I itch.", "complaints": "Red patches.", "diagnosis": "eczema"},
            "k2": {"general_complaint": "My lip tingles.", "complaints": "Blisters.", "diagnosis": "herpes"}}
    (tmp_path / "in.json").write_text(json.dumps(rows))
    res = _cli("cases", "import-3mdbench", str(tmp_path / "in.json"), "-o", str(tmp_path / "cases"))
    assert res.returncode == 0 and "(0 train, 2 test" in res.stdout, res.stderr
    url = f"sqlite:///{tmp_path / 's.db'}"
    line = _one_error(_cli("bench", "run", "--run-id", "r", "--cases", str(tmp_path / "cases"), "--db", url))
    assert "has no train cases" in line and "rule doctor" in line, line
    assert not (tmp_path / "s.db").exists() or Store(url).get_run("r") is None


# -- Ctrl-C -------------------------------------------------------------------------------------------

class _Silent:
    """A 127.0.0.1 'model server' that accepts connections and never answers: consultations
    hang until interrupted, and ``hits`` tells the test the run has really started."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.hits += 1

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


def test_ctrl_c_marks_the_run_interrupted_and_says_how_to_resume(tmp_path):
    server = _Silent()
    (tmp_path / "dxgraph.yaml").write_text("request_timeout_s: 120\nmax_retries: 0\n")
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = f"openai:m@http://127.0.0.1:{server.port}/v1"
    args = ["bench", "run", "--run-id", "cc", "--doctor", spec, "--temperaments", "neutral,choleric",
            "--limit", "1", "--concurrency", "2", "--no-progress", "--db", url]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*DXGRAPH, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while server.hits < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert server.hits >= 2, "the run never reached the model"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    line = next(ln for ln in err.splitlines() if ln.startswith("interrupted: "))
    assert line.startswith("interrupted: 0 of 2 done are stored (run status: interrupted); resume with: "
                           "dxgraph bench run --run-id cc "), line
    assert Store(url).get_run("cc").status == "interrupted"
    res = CliRunner().invoke(app, ["bench", "list", "--json", "--db", url])
    assert json.loads(res.output)[0]["status"] == "interrupted"
