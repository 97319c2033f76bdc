"""The house rules, checked: rooms import one way (import-linter's contracts in
pyproject.toml), no module grows past what one reader holds, and the public API resolves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dxgraph

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    pytest.importorskip("importlinter")
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "broken" not in out.stdout.lower().replace("0 broken", "")


def test_no_module_is_a_house_of_its_own():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "dxgraph").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420}
    assert not long, f"split these modules (over ~400 lines): {long}"


def test_no_reexport_shims():
    # A module that re-imports names at its bottom (``# noqa: E402``) or binds them lazily with
    # a module __getattr__ is a shim left by a split; only the package root's public API may.
    offenders = []
    for p in (ROOT / "dxgraph").rglob("*.py"):
        if p == ROOT / "dxgraph" / "__init__.py":
            continue
        text = p.read_text(encoding="utf-8")
        if "def __getattr__(name" in text and "class " not in text.split("def __getattr__(name")[0][-200:]:
            offenders.append(str(p.relative_to(ROOT)))
        if "import" in text and "# noqa: E402" in text:
            offenders.append(str(p.relative_to(ROOT)))
    assert not offenders, offenders


@pytest.mark.parametrize("name", [n for n in dxgraph.__all__ if n != "__version__"])
def test_public_api_names_resolve(name):
    assert getattr(dxgraph, name) is not None
