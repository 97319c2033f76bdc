"""Running ``dxgraph`` as a user does, in a subprocess: for tests of exit codes and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DXGRAPH = [sys.executable, "-c", "from dxgraph.cli import main; main()"]


def run_cli(*args: str, cwd=None, env: dict[str, str] | None = None, columns: int | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``dxgraph ARGS`` with this checkout importable; ``columns`` sets the terminal width."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if columns:
        full["COLUMNS"] = str(columns)
    return subprocess.run([*DXGRAPH, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full)


def one_error(res: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` line of a refused command (exit 2, no traceback)."""
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    return lines[0]
