"""dxgraph: multi-agent diagnostic workflows and telemedicine dialogue benchmarks.

Research software: not a medical device, not for clinical use.

The public API (what the README uses), imported on first use so that ``import dxgraph``
and the CLI start fast::

    from dxgraph import diagnose, run_benchmark, BenchConfig, build_report, Store

========================  ==========================================================
``diagnose``              run a workflow on images (sync); ``run_workflow`` is async
``check_images``          bind and check images for a workflow without running it
``load_workflow``         read a workflow YAML file (errors as ``FILE:LINE: message``)
``run_benchmark``         run a dialogue benchmark (async); ``retry`` re-runs failures
``BenchConfig``           what a benchmark run is: cases, temperaments, agents, seeds
``build_report``          metrics with CIs for a stored run
``Store``                 the result store (SQLite by default, Postgres by URL)
``load_model``            a ChatModel from a spec; ``for_role`` from the settings
``load_settings``         ``dxgraph.yaml`` and ``DXGRAPH_*`` variables, validated
``load_cases``            a case set (bundled or imported) by name or path
``SampleResult``          the typed record of one finished consultation
========================  ==========================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "diagnose": "dxgraph.agents.diagnose",
    "run_workflow": "dxgraph.agents.diagnose",
    "check_images": "dxgraph.agents.diagnose",
    "load_workflow": "dxgraph.workflows.loader",
    "run_benchmark": "dxgraph.bench.runner",
    "retry": "dxgraph.bench.runner",
    "BenchConfig": "dxgraph.bench.grid",
    "build_report": "dxgraph.bench.report",
    "Store": "dxgraph.store",
    "load_model": "dxgraph.models",
    "for_role": "dxgraph.models.roles",
    "load_settings": "dxgraph.config",
    "load_cases": "dxgraph.simulator.cases",
    "SampleResult": "dxgraph.bench.record",
}

__all__ = ["__version__", *_API]

if TYPE_CHECKING:
    from dxgraph.agents.diagnose import check_images, diagnose, run_workflow
    from dxgraph.bench.grid import BenchConfig
    from dxgraph.bench.record import SampleResult
    from dxgraph.bench.report import build_report
    from dxgraph.bench.runner import retry, run_benchmark
    from dxgraph.config import load_settings
    from dxgraph.models import load_model
    from dxgraph.models.roles import for_role
    from dxgraph.simulator.cases import load_cases
    from dxgraph.store import Store
    from dxgraph.workflows.loader import load_workflow


def __getattr__(name: str) -> Any:
    # PEP 562: the API names resolve on first use, so `dxgraph --help` does not import torch.
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'dxgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
