"""The benchmark against a real, unreliable OpenAI-compatible server, as a user runs it.

A ``StubServer`` on 127.0.0.1 answers the LLM doctor and the LLM patient (``openai:stub@URL``)
and, for a share of requests, fails with a 500, hangs past the client timeout, or sends a
truncated JSON body; for another share its reply is well-formed HTTP whose content is broken
JSON (the schema repair path). Whatever happens, every sample of the grid must end either
``done`` or with its error recorded, and once the server is healthy ``dxgraph bench retry``
must finish the failed ones, and only those.
"""

from __future__ import annotations

import json
import random
import re
import threading

from typer.testing import CliRunner

from dxgraph.cli import app
from dxgraph.models.base import Message
from dxgraph.testing.stub_server import StubServer
from dxgraph.store import Store
from tests.bench.fakes import consultation_reply

__all__ = ["StubAgents", "RecordingStub"]

TEMPERAMENTS = ("neutral", "choleric", "phlegmatic")


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


class StubAgents:
    """The stub server's responder: the doctor asks two questions then concludes 'acne', the
    patient answers; while ``broken_rate`` > 0 that share of replies is unterminated JSON."""

    def __init__(self, broken_rate: float = 0.0, seed: int = 0):
        self.broken_rate = broken_rate
        self.broken = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # the stub serves each connection on its own thread

    def __call__(self, body: dict) -> dict | str:
        with self._lock:
            broken = self._rng.random() < self.broken_rate
            self.broken += broken
        if broken:
            return '{"question": "When did it'
        messages = [Message(role=m["role"], content=_text(m.get("content"))) for m in body["messages"]]
        return consultation_reply(messages)


class RecordingStub(StubServer):
    """A StubServer that also counts which faults it drew (500, hang, malformed)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.faults: dict[str, int] = {}

    def _draw_fault(self) -> str | None:
        fault = super()._draw_fault()
        if fault is not None:
            with self._lock:
                self.faults[fault] = self.faults.get(fault, 0) + 1
        return fault


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_faulty_server_every_sample_done_or_error_then_retry_completes(db_url, tmp_path, monkeypatch):
    # Endpoint settings reach the benchmark's clients from dxgraph.yaml (the test's cwd):
    # a short timeout turns a hang into a retry within a second, one retry per request.
    (tmp_path / "dxgraph.yaml").write_text("request_timeout_s: 0.5\nmax_retries: 1\n")
    monkeypatch.chdir(tmp_path)
    agents = StubAgents(broken_rate=0.15, seed=3)
    server = RecordingStub(responder=agents, fail_rate=0.2, hang_rate=0.1, malformed_rate=0.15,
                           hang_s=3.0, seed=7)
    runner = CliRunner()
    with server:
        spec = f"openai:stub@{server.base_url}"
        args = ["bench", "run", "--run-id", "flaky", "--doctor", spec, "--patient", spec, "--judge", "rules",
                "--limit", "4", "--temperaments", ",".join(TEMPERAMENTS), "--max-turns", "4",
                "--concurrency", "6", "--timeout", "60", "--db", db_url, "--no-progress"]
        res = runner.invoke(app, args)
        assert res.exit_code == 1, (res.output, res.exception)  # some samples failed: exit 1
        store = Store(db_url)
        rows = store.samples("flaky")
        keys = [r.key for r in rows]
        assert len(keys) == len(set(keys)) == 12  # every sample of the grid ended, once
        assert {r.case_id for r in rows} == {k.split("|")[0] for k in keys} and len({r.case_id for r in rows}) == 4
        failed = {r.key: r.error for r in rows if r.status == "error"}
        done = [r for r in rows if r.status == "done"]
        assert {r.status for r in rows} <= {"done", "error"}
        assert failed and done, (server.faults, {k: e for k, e in failed.items()})
        # Each fault kind was served, and each failure says which endpoint gave up and why.
        assert set(server.faults) == {"fail", "hang", "malformed"} and agents.broken > 0, server.faults
        for err in failed.values():
            # A server that gave no answer and a reply that stayed broken are told apart.
            assert re.match(r"(ModelUnavailable: .*last error: |ModelOutputError: .*last problem: )", err), err
            assert "model 'stub' at http://127.0.0.1:" in err, err
        for r in done:
            result = json.loads(r.result_json)
            assert result["final"]["label"] == "acne" and result["turns"] >= 1
            assert all(t.role in ("doctor", "patient") for t in store.turns("flaky", r.key))
        assert store.get_run("flaky").status == "partial"
        out = _one_line(res.output)
        assert f"{len(done)}/12 done, {len(failed)} failed" in out and "dxgraph bench retry flaky" in out

        server.rates = dict.fromkeys(server.rates, 0.0)
        agents.broken_rate = 0.0
        # Healthy now: a generous timeout, so a loaded CI machine cannot fail the retry.
        (tmp_path / "dxgraph.yaml").write_text("request_timeout_s: 10\nmax_retries: 1\n")
        requests_before = server.requests
        res = runner.invoke(app, ["bench", "retry", "flaky", "--db", db_url, "--no-progress"])
        assert res.exit_code == 0, (res.output, res.exception)
        assert server.requests > requests_before
    out = _one_line(res.output)
    assert f"complete — 12/12 done, 0 failed; this call ran {len(failed)} (0 errors)" in out
    after = {r.key: r for r in store.samples("flaky")}
    assert len(after) == 12 and all(r.status == "done" and r.error is None for r in after.values())
    assert {k for k, r in after.items() if r.attempts == 2} == set(failed)  # only the failed ones re-ran
    assert all(after[r.key].finished_at == r.finished_at for r in done)  # done ones untouched
    assert store.get_run("flaky").status == "complete"


async def test_benchmark_clients_take_the_endpoint_settings(tmp_path, monkeypatch):
    (tmp_path / "dxgraph.yaml").write_text("request_timeout_s: 0.25\nmax_retries: 2\nmax_concurrency: 5\n")
    monkeypatch.chdir(tmp_path)
    from dxgraph.bench.grid import BenchConfig
    from dxgraph.bench.runner import SimulatorHarness

    spec = "openai:stub@http://127.0.0.1:9/v1"
    harness = SimulatorHarness(BenchConfig(run_id="x", doctors=[spec], patient=spec))
    model = harness.agents.pool.get(spec)
    inner = model.inner  # the OpenAI-compatible client inside the tracing wrapper
    assert (inner.timeout_s, inner.max_retries, inner.max_concurrency) == (0.25, 2, 5)
    assert harness.agents.pool.get(spec) is model  # one client per spec for the whole run
    await harness.aclose()
