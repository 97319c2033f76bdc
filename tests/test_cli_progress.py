"""Long commands say what they are doing on a terminal, and nothing when piped or --json."""

from __future__ import annotations

import io

from rich.console import Console

from dxgraph.bench.runner import _Progress
from dxgraph.cli.progress import phase


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=100), buf


def test_a_phase_is_named_on_a_terminal():
    console, buf = _console(True)
    with phase("generating 4 synthetic glaucoma phantoms", console=console):
        pass
    assert "generating 4 synthetic glaucoma phantoms: done" in buf.getvalue()


def test_a_phase_is_silent_when_piped_or_quiet():
    for terminal, quiet in ((False, False), (True, True)):
        console, buf = _console(terminal)
        with phase("fitting", quiet=quiet, console=console):
            pass
        assert buf.getvalue() == ""


def test_phantoms_generate_piped_prints_only_its_result(tmp_path):
    from tests.subprocess_cli import run_cli

    proc = run_cli("phantoms", "generate", "--workflow", "glaucoma", "-n", "2", "-o", str(tmp_path / "p"))
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout.startswith("wrote 2 synthetic")


def test_bench_bar_names_the_loading_phase_until_the_first_sample(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    bar = _Progress(True, 3, "run r")
    try:
        assert "loading models" in bar.bar.tasks[0].description
        bar.advance(True)
        assert bar.bar.tasks[0].description == "run r"
    finally:
        bar.close()
