"""``dxgraph workflows draft`` and ``dxgraph workflows calibrate``: authoring new workflows."""

from __future__ import annotations

from dxgraph.cli.workflows import app  # noqa: F401  (commands below register on it)
