"""``dxgraph workflows draft`` and ``dxgraph workflows calibrate``: authoring new workflows."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from dxgraph.cli import console
from dxgraph.cli.workflows import app, check_output_file
from dxgraph.errors import ConfigError

__all__ = ["draft", "calibrate", "planner_model"]


def planner_model(spec: str | None):
    """The model that drafts: ``--model SPEC``, else the configured planner role."""
    from dxgraph.config import load_settings, role_spec
    from dxgraph.models.roles import model_for_spec

    settings = load_settings()
    spec = spec or role_spec(settings, "planner")
    if not spec:
        raise ConfigError(
            "drafting needs a planner model: set DXGRAPH_PLANNER_MODEL "
            "(e.g. 'openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1') or pass --model SPEC"
        )
    return model_for_spec(spec, settings)


@app.command()
def draft(
    question: Annotated[str, typer.Argument(help="the clinical question, e.g. 'Is there pleural effusion?'")],
    out: Annotated[Path, typer.Option("-o", "--out", help="where to write the draft YAML")],
    model: Annotated[Optional[str], typer.Option("--model", help="model spec; default the planner role's model")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=30, help="how many guideline passages to retrieve for the "
                                                           "model (1-30)")] = 6,
    max_repairs: Annotated[int, typer.Option("--max-repairs", min=0, max=10,
                                             help="rounds in which the model may fix an invalid draft")] = 3,
    force: Annotated[bool, typer.Option("--force", help="overwrite --out if it exists")] = False,
) -> None:
    """Draft a new workflow from the guideline corpus with the planner model, for review (nothing runs)."""
    from dxgraph.workflows.draft import draft_workflow, render_draft
    from dxgraph.workflows.loader import parse_workflow

    check_output_file(out, "-o/--out", force=force)
    chat = planner_model(model)

    async def go():
        try:
            return await draft_workflow(question, chat, k=k, max_repairs=max_repairs)
        finally:
            await chat.aclose()

    result = asyncio.run(go())
    text = render_draft(result, model_name=chat.name, question=question, when=date.today())
    parse_workflow(text, file=str(out))  # the header is comments only; check the exact bytes we write
    created = _write(out, text)
    console.print("retrieved guideline sources:", highlight=False)
    for p in result.passages:
        console.print(f"  {p.score:.2f} [{p.ref}] {p.title} — {p.source}", highlight=False, markup=False)
    console.print(f"repair rounds: {result.repairs} (of at most {max_repairs})", highlight=False)
    console.print(f"wrote DRAFT {result.workflow.id!r} ({len(result.workflow.indicators)} indicators) to {out.resolve()}"
                  + (f" (created the folder {created})" if created else "") + "; review it before use",
                  highlight=False, markup=False)


@app.command()
def calibrate(
    workflow: Annotated[str, typer.Argument(help="built-in id or YAML path")],
    data: Annotated[Path, typer.Option("--data", "-d", help="calibration folder with labels.csv")],
    out: Annotated[Path, typer.Option("-o", "--out", help="where to write the calibrated YAML")],
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64)] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite --out if it exists")] = False,
) -> None:
    """Fit weights and threshold by logistic regression on a labelled set; write a new version."""
    from dxgraph.bench.calibrate import calibrate_workflow, dump_workflow
    from dxgraph.workflows.loader import find_workflow, parse_workflow

    wf, path = find_workflow(workflow)
    check_output_file(out, "-o/--out", force=force)  # before the fit, which runs the workflow on every row
    overwriting = out.exists()
    from dxgraph.cli.progress import phase

    with phase(f"fitting {wf.id} on {data}", quiet=as_json):
        new_wf, report = asyncio.run(calibrate_workflow(wf, data, concurrency=concurrency))
    header = (f"Calibrated from {wf.id} v{wf.version} ({path}) on {data} (n={report['n']}) by "
              f"'dxgraph workflows calibrate' on {date.today().isoformat()}.\n"
              "Weights and threshold are fitted; review them, and measure held-out accuracy on another folder.")
    text = dump_workflow(new_wf, header=header)
    parse_workflow(text, file=str(out))
    created = _write(out, text)
    if as_json:
        print(json.dumps(report | {"out": str(out.resolve()), "created_folder": created}, indent=2))
        return
    table = Table("indicator", "coefficient", "weight", "unavailable", title=escape(f"{wf.id} v{wf.version} -> v{new_wf.version}"))
    for ind in new_wf.indicators:
        table.add_row(escape(ind.id), f"{report['coefficients'][ind.id]:+.3f}", f"{report['weights'][ind.id]:.3f}",
                      str(report["unavailable"][ind.id]))
    console.print(table)
    console.print(f"decision: weighted, threshold {report['threshold']:.3f} (intercept {report['intercept']:+.3f})",
                  highlight=False)
    for ind_id in report["not_fitted"]:
        console.print(f"[yellow]warning:[/yellow] {escape(repr(ind_id))} was unavailable on every row, so its weight "
                      f"({report['weights'][ind_id]:g}) is not fitted; configure its tool (e.g. the VLM) and "
                      "calibrate again, or set the weight by hand", highlight=False)
    b, a = report["before"], report["after"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    console.print(f"balanced accuracy on the calibration set (TRAINING-set accuracy, optimistic; n={report['n']}): "
                  f"before {fmt(b['balanced_accuracy'])}, after {fmt(a['balanced_accuracy'])}"
                  + (f" (over determinate outcomes: coverage before {fmt(b['coverage'])}, after {fmt(a['coverage'])})"
                     if min(b["coverage"] or 0, a["coverage"] or 0) < 1 else ""), highlight=False)
    console.print(f"held-out accuracy: run 'dxgraph evaluate --workflow {out} --data OTHER_DIR' on a folder not used here",
                  highlight=False, markup=False)
    console.print(("overwrote " if overwriting else "wrote ") + str(out.resolve())
                  + (f" (created the folder {created})" if created else ""), highlight=False, markup=False)


def _write(out: Path, text: str) -> str | None:
    """Write ``text`` to ``out``; return the top folder created on the way, if any, so it can be said."""
    missing = [d for d in [out.parent, *out.parent.parents] if not d.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return str(missing[-1].resolve()) if missing else None
