"""`dxgraph models ...` commands: which model serves each role, and is it answering."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

__all__ = ["app"]

app = typer.Typer(help="Model per role: list the specs, check that a role's model answers.", no_args_is_help=True)


@app.command("check")
def check(
    role: Annotated[str, typer.Argument(help="planner, doctor, patient, judge or vlm.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Send one short prompt to ROLE's model; exit 1 if it does not answer."""
    from dxgraph.cli import console
    from dxgraph.models.check import check_role

    result = asyncio.run(check_role(role))
    if as_json:
        typer.echo(json.dumps(result))
    elif result["spec"] is None:
        env = f"DXGRAPH_{role.upper()}_MODEL"
        example = "openai:MODEL@http://HOST:PORT/v1" + ("" if role == "vlm" else " (or local:smollm2)")
        console.print(f"no model is configured for {role!r}, so there is nothing to check.", highlight=False)
        console.print(f"configure one with {env}={example}, or 'models: {{{role}: ...}}' in dxgraph.yaml",
                      highlight=False, markup=False)
    else:
        table = Table(show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        status = "[green]ok[/green]" if result["ok"] else "[red]failed[/red]"
        table.add_row("role", escape(role))
        table.add_row("spec", escape(str(result["spec"])))
        table.add_row("status", status)
        for key in ("latency_ms", "output_tokens", "text", "error"):
            if key in result:
                table.add_row(key, escape(str(result[key])))
        console.print(table)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Show the model spec for each role and where it comes from."""
    from dxgraph.cli import console
    from dxgraph.config import ROLES, load_settings, role_spec

    settings = load_settings()
    rows = []
    for role in ROLES:
        spec = role_spec(settings, role)
        env = f"DXGRAPH_{role.upper()}_MODEL"
        if os.environ.get(env):
            source = env
        elif getattr(settings.models, role):
            source = "config file"
        else:
            source = "default"
        rows.append({"role": role, "spec": spec, "source": source})
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("role", "spec", "source")
    for row in rows:
        spec = escape(row["spec"]) if row["spec"] else "[dim]not configured (feature unavailable)[/dim]"
        table.add_row(escape(row["role"]), spec, escape(row["source"] or ""))
    console.print(table)


@app.command("export")
def export(
    model: Annotated[str, typer.Argument(help="'smollm2' or a .gguf file.")],
    out: Annotated[str, typer.Argument(help="Folder to write the transformers model to.")],
) -> None:
    """Write a local GGUF model as a transformers folder, e.g. for vLLM to serve offline."""
    from pathlib import Path

    from dxgraph.cli import console
    from dxgraph.models.local import export_transformers

    already = (Path(out) / "config.json").exists()  # export_transformers then reuses it
    folder = export_transformers(model, out)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    served = model if model == "smollm2" else "local"
    if already:
        console.print(f"{folder} already holds a transformers model ({size / 1e6:.0f} MB), skipped; "
                      "delete it to export again", highlight=False, markup=False)
    else:
        console.print(f"wrote {folder} ({size / 1e6:.0f} MB)", highlight=False, markup=False)
    console.print(f"serve it with: vllm serve {folder} --served-model-name {served}", highlight=False, markup=False)
