"""`dxgraph cases ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="cases commands.", no_args_is_help=True)
