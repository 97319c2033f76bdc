"""`dxgraph workflows ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="workflows commands.", no_args_is_help=True)
