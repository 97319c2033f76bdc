"""``dxgraph cases ...``: list, show, validate and import dialogue-benchmark cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from dxgraph.cli import console, err_console

__all__ = ["app"]

app = typer.Typer(help="List, show, validate and import dialogue-benchmark cases.", no_args_is_help=True)

_CASES_HELP = "'bundled', 'bundled-imaging', 'bundled-all', a case file or a folder of case files."


@app.command("list")
def list_cmd(
    cases: Annotated[str, typer.Option("--cases", help=_CASES_HELP)] = "bundled",
    split: Annotated[Optional[str], typer.Option("--split", help="train, test or all.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array on stdout")] = False,
) -> None:
    """List cases with their ground-truth label (never shown to agents)."""
    from dxgraph.simulator.cases import load_cases

    loaded = load_cases(cases, split=split)
    rows = [{"id": c.id, "split": c.split, "diagnosis": c.diagnosis, "age": c.age, "sex": c.sex,
             "facts": len(c.facts), "images": len(c.images), "workflow": c.workflow,
             "synthetic": c.synthetic, "source": c.source} for c in loaded]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    console.print(_table(rows, f"{len(rows)} cases from {cases!r}", console.width))
    synthetic = sum(r["synthetic"] for r in rows)
    console.print(f"{synthetic} of {len(rows)} cases are synthetic.", highlight=False)


def _table(rows: list[dict], title: str, width: int) -> Table:
    """Cases as a table whose values are never cut to ``tra…``: columns that carry least
    (workflow, images, facts, age) are dropped at narrow widths, and a long diagnosis wraps."""
    columns = [("id", "id"), ("split", "split"), ("diagnosis", "diagnosis (ground truth)"), ("sex", "sex"),
               ("age", "age"), ("facts", "facts"), ("images", "images"), ("workflow", "workflow")]
    if not any(r["workflow"] for r in rows):
        columns.remove(("workflow", "workflow"))

    def cell(r: dict, key: str) -> str:
        return "" if r[key] is None else str(r[key])

    def need(cols) -> int:  # widest cell or header of each column, plus borders and padding
        return sum(max([len(h), *(len(cell(r, k)) for r in rows)]) + 3 for k, h in cols) + 1

    for optional in ("workflow", "images", "facts", "age"):
        if need(columns) <= width:
            break
        columns = [c for c in columns if c[0] != optional]
    table = Table(title=title)
    for key, header in columns:
        # Every value but the diagnosis stays whole (an id is copied into other commands);
        # a long diagnosis wraps at its spaces.
        whole = key != "diagnosis"
        widest = max((len(cell(r, key)) for r in rows), default=0)
        table.add_column(header, overflow="fold", no_wrap=whole, min_width=widest if whole else None)
    for r in rows:
        table.add_row(*(escape(cell(r, key)) for key, _ in columns))
    return table


@app.command()
def show(
    case_id: Annotated[str, typer.Argument(help="case id, e.g. psoriasis-03")],
    cases: Annotated[str, typer.Option("--cases", help=_CASES_HELP)] = "bundled",
    as_json: Annotated[bool, typer.Option("--json", help="the case as JSON")] = False,
) -> None:
    """Show one case, including its GROUND TRUTH (diagnosis, differential, visual findings)."""
    from dxgraph.simulator.cases import get_case, leaked_labels

    case = get_case(case_id, cases)
    if as_json:
        print(json.dumps({"ground_truth_included": True, **case.model_dump()}, indent=2))
        return
    who = ", ".join(x for x in (f"{case.age} y" if case.age else "", case.sex or "") if x)
    tag = "synthetic" if case.synthetic else "not synthetic"
    console.print(f"[bold]{escape(case.id)}[/bold]  ({escape(who)}; split {escape(case.split)}; {tag}; "
                  f"source {escape(str(case.source))})", highlight=False)
    console.print("[bold]What the patient knows[/bold]", highlight=False)
    console.print(f"  chief complaint: {case.chief_complaint}", highlight=False, markup=False)
    for fact in case.facts:
        console.print(f"  [{fact.id}] ({fact.category}) {fact.text}", highlight=False, markup=False)
    for img in case.images:
        console.print(f"  image: {img.path}" + (f" ({img.modality})" if img.modality else ""),
                      highlight=False, markup=False)
    console.print("[bold red]GROUND TRUTH - hidden from doctor agents, patients and tools[/bold red]")
    console.print(f"  diagnosis: {case.diagnosis}", highlight=False, markup=False)
    console.print(f"  differential: {', '.join(case.differential) or '-'}", highlight=False, markup=False)
    console.print(f"  visual findings (shown only as an image description): {case.visual_findings or '-'}",
                  highlight=False, markup=False)
    if case.workflow:
        console.print(f"  workflow: {case.workflow}", highlight=False, markup=False)
    leaks = leaked_labels(case)
    if leaks:
        console.print(f"[yellow]warning:[/yellow] the patient-facing text names the label ({escape(repr(leaks[0]))})")


@app.command()
def validate(
    cases: Annotated[str, typer.Argument(help=_CASES_HELP)] = "bundled",
) -> None:
    """Load a case set and report leaks (patient text naming its own label); exit 2 on any."""
    from dxgraph.simulator.cases import leaked_labels, load_cases

    loaded = load_cases(cases)
    leaky = [(c.id, leaked_labels(c)) for c in loaded if leaked_labels(c)]
    for cid, labs in leaky:
        console.print(f"{cid}: patient-facing text names its own label {labs[0]!r}", highlight=False, markup=False)
    train = sum(c.split == "train" for c in loaded)
    console.print(f"{len(loaded)} cases ({train} train, {len(loaded) - train} test), {len(leaky)} with leaks",
                  highlight=False)
    if leaky:
        raise typer.Exit(2)


@app.command("import-3mdbench")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="3MDBench JSON (keyed by case id) or parquet file, or a folder of them")],
    out: Annotated[Path, typer.Option("-o", "--out", help="folder to write cases.yaml and images/ into")],
    train_fraction: Annotated[float, typer.Option(help="share of each label's cases put in the train split")] = 0.5,
) -> None:
    """Convert 3MDBench cases to a dxgraph case folder (use it with --cases OUT)."""
    from dxgraph.simulator.cases_import import import_3mdbench

    cases = import_3mdbench(path, out, train_fraction=train_fraction)
    train = sum(c.split == "train" for c in cases)
    labels = len({c.diagnosis for c in cases})
    console.print(f"imported {len(cases)} cases ({train} train, {len(cases) - train} test, {labels} labels) "
                  f"into {str(out)!r}", highlight=False)
    if cases and not train:
        err_console.print("[yellow]warning:[/yellow] no train cases: the rule doctor ('--doctor rules') cannot run "
                          "on this set, it learns from the train split; give labels two or more cases each, or "
                          "raise --train-fraction (a label of one case then goes to train), or benchmark an LLM "
                          "--doctor, or run `dxgraph bench run --protocol 3mdbench` (its rule doctor learns from "
                          "--kb-cases, by default the bundled train split)", highlight=False, soft_wrap=True)
    elif train == len(cases):
        err_console.print("[yellow]warning:[/yellow] no test cases: `dxgraph bench run` (which runs the test split) "
                          "finds nothing here; lower --train-fraction, run with --split train, or run "
                          "`dxgraph bench run --protocol 3mdbench`, which evaluates every case",
                          highlight=False, soft_wrap=True)
