"""The CLI in a shell: busy ports, piped output, help text at 80 columns, the UI's start line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

DXGRAPH = [sys.executable, "-c", "from dxgraph.cli import main; main()"]


def run(*args, env=None, timeout=120, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*DXGRAPH, *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd)


@pytest.fixture
def busy_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", [["ui"], ["serve", "tools"]])
def test_a_busy_port_is_one_line_and_exit_2(busy_port, command):
    r = run(*command, "--port", str(busy_port), timeout=60)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr
    assert lines == [f"error: port {busy_port} on 127.0.0.1 is in use; pick another with --port"], r.stderr


def test_a_host_that_is_not_here_is_one_line():
    r = run("serve", "tools", "--host", "192.0.2.1", "--port", "8100", timeout=60)
    assert r.returncode == 2 and "192.0.2.1 is not an address of this machine" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_piped_errors_keep_file_and_line_on_one_line(tmp_path):
    good = Path(__file__).resolve().parents[1] / "dxgraph" / "workflows" / "builtin" / "cardiomegaly.yaml"
    deep = tmp_path / ("a-folder-name-long-enough-that-the-message-passes-any-terminal-width-" * 3)
    deep.mkdir()
    bad = deep / "bad.yaml"
    bad.write_text(good.read_text().replace("rule: ctr > 0.5", "rule: ctr > 0.5\n    colour: red"))
    r = run("workflows", "validate", str(bad), env={"COLUMNS": ""})
    line = next(line for line in r.stderr.splitlines() if "colour" in line)
    assert len(line) > 250 and line.startswith(f"{bad}:") and "unknown key 'colour'" in line, r.stderr


def test_piped_tables_keep_a_row_on_one_line():
    from typer.testing import CliRunner

    from dxgraph.cli import app

    spec = "openai:" + "x" * 90 + "@http://127.0.0.1:9/v1"
    result = CliRunner().invoke(app, ["models", "list"], env={"DXGRAPH_PLANNER_MODEL": spec, "COLUMNS": ""})
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.stdout.splitlines() if "planner" in line]
    assert spec in row and "DXGRAPH_PLANNER_MODEL" in row


@pytest.mark.parametrize("group", [[], ["models"], ["workflows"], ["cases"], ["bench"], ["serve"], ["phantoms"]])
def test_help_fits_80_columns(group):
    r = run(*group, "--help", env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert r.returncode == 0, r.stderr
    widths = [len(line) for line in r.stdout.splitlines()]
    assert widths and max(widths) <= 80, r.stdout
    assert "Usage:" in r.stdout and "Traceback" not in r.stderr


def test_the_ui_never_opens_a_public_link(monkeypatch):
    pytest.importorskip("gradio")
    from gradio import networking

    from dxgraph.config import load_settings
    from dxgraph.models import ScriptedModel
    from dxgraph.testing.net import free_port
    from dxgraph.ui.app import launch
    from dxgraph.ui.services import Services

    tunnels = []
    monkeypatch.setattr(networking, "setup_tunnel", lambda **kw: tunnels.append(kw) or "https://x.gradio.live")
    monkeypatch.setenv("GRADIO_SHARE", "true")  # what a stray env var or a hosted notebook does
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    # A scripted doctor: nothing to warm up, so the test is about the launch alone.
    services = Services(load_settings(), models={"doctor": ScriptedModel(["hello"])})
    demo = launch(port=free_port(), block=False, services=services)
    try:
        assert tunnels == [] and demo.share is False and demo.share_url is None
    finally:
        demo.close()
        services.close()


def test_dxgraph_ui_prints_its_address_and_no_share_hint():
    pytest.importorskip("gradio")
    import httpx

    from dxgraph.testing.net import free_port

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([*DXGRAPH, "ui", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the UI did not answer on port {port}")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"dxgraph UI on http://127.0.0.1:{port} (research demo, not for clinical use" in out, out
    assert "share=True" not in out and "public" not in out, out
