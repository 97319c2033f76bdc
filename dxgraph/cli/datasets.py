"""``dxgraph datasets``: the public data-set layouts ``evaluate --dataset`` reads."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dxgraph.cli import console

app = typer.Typer(help="Public data sets that 'dxgraph evaluate --dataset FORMAT:PATH' reads in their own layout.",
                  no_args_is_help=True)


@app.command("list")
def list_(verbose: Annotated[bool, typer.Option("--layout", help="show the expected folder layout")] = False) -> None:
    """The formats, the workflow each feeds, and where its truth comes from."""
    from dxgraph.bench.datasets import formats

    table = Table("format", "data set", "workflow", "truth", *(["layout"] if verbose else []))
    for f in formats().values():
        table.add_row(f.name, escape(f.title), f.workflow, escape(f.truth), *([escape(f.layout)] if verbose else []))
    console.print(table)
    console.print("usage: dxgraph evaluate -w WORKFLOW --dataset FORMAT:PATH (the folder as downloaded)",
                  highlight=False, markup=False)
