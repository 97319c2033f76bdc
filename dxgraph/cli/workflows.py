"""``dxgraph workflows ...`` and the top-level ``diagnose``, ``evaluate``, ``phantoms``."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from dxgraph.cli import console, err_console
from dxgraph.errors import ConfigError

app = typer.Typer(help="List, show, validate and draft diagnostic workflows.", no_args_is_help=True)
phantoms_app = typer.Typer(help="Synthetic images with known ground truth.", no_args_is_help=True)


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="one JSON array on stdout")] = False) -> None:
    """List the built-in workflows."""
    from dxgraph.workflows.loader import list_workflows

    items = [{"id": wf.id, "name": wf.name, "version": wf.version, "modality": wf.modality, "path": str(p)}
             for wf, p in list_workflows()]
    if as_json:
        print(json.dumps(items, indent=2))
        return
    table = Table("id", "name", "version", "path")
    for it in items:
        table.add_row(it["id"], it["name"], it["version"], it["path"])
    console.print(table)


@app.command()
def show(workflow: Annotated[str, typer.Argument(help="built-in id or path to a YAML file")]) -> None:
    """Show a workflow's plan, rules, decision and guideline sources."""
    from dxgraph.agents.planner import compile_plan
    from dxgraph.workflows.loader import find_workflow

    wf, path = find_workflow(workflow)
    plan = compile_plan(wf)
    console.print(f"[bold]{wf.name}[/bold]  ({path})", highlight=False)
    console.print(plan.describe(), highlight=False, markup=False)
    d = wf.decision
    console.print(f"decision: {d.method}" + (f", threshold {d.threshold}" if d.threshold is not None else "")
                  + (f", k {d.k}" if d.k else ""), highlight=False)
    console.print(f"outcomes: positive = {wf.outcomes.positive!r}; negative = {wf.outcomes.negative!r}", highlight=False)
    for ref in wf.references:
        console.print(f"[{ref.id}] {ref.citation}" + (f" {ref.url}" if ref.url else ""), highlight=False, markup=False)


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="workflow YAML files")]) -> None:
    """Validate workflow files: exit 0 if all are valid, else print every error and exit 2."""
    from dxgraph.workflows.loader import WorkflowErrors, load_workflow

    bad = 0
    for f in files:
        try:
            wf = load_workflow(f)
            console.print(f"[green]ok[/green] {f} ({wf.id} v{wf.version}, {len(wf.indicators)} indicators)", highlight=False)
        except WorkflowErrors as exc:
            bad += 1
            for e in exc.errors:
                err_console.print(str(e), highlight=False, markup=False)
        except ConfigError as exc:
            bad += 1
            err_console.print(str(exc), highlight=False, markup=False)
    if bad:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (for editor validation)."""
    from dxgraph.workflows.schema import Workflow

    s = Workflow.model_json_schema()
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["title"] = "dxgraph workflow"
    print(json.dumps(s, indent=2))


@app.command()
def tools(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the registered tools with their inputs, args and outputs."""
    from dxgraph.tools.registry import registry

    specs = sorted(registry().values(), key=lambda s: s.name)
    if as_json:
        print(json.dumps([s.json_schema() for s in specs], indent=2, default=str))
        return
    table = Table("tool", "version", "inputs", "args", "outputs", "description")
    for s in specs:
        table.add_row(s.name, s.version, ", ".join(s.inputs), ", ".join(s.args), ", ".join(s.outputs), s.description)
    console.print(table)


def diagnose(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="built-in id or YAML path")],
    image: Annotated[list[str], typer.Option("--image", "-i", help="image path or sample:retina|microaneurysms|ct|mr; once per workflow input")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
    overlay: Annotated[Optional[Path], typer.Option("--overlay", help="write a segmentation overlay PNG here")] = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="save the diagnosis in the store")] = True,
) -> None:
    """Run a diagnostic workflow on images and show the evidence behind the outcome."""
    from dxgraph.workflows.run import check_images, run_workflow

    check_images(workflow, image)  # a bad file is a one-line error and exit 2, not an "indeterminate" run
    tmp = tempfile.mkdtemp(prefix="dxgraph-overlay-") if overlay else None
    try:
        st = _store() if store else None
        dx = asyncio.run(run_workflow(workflow, image, overlay_dir=tmp, narrator=_narrator(), store=st))
        if overlay and tmp:
            made = next((a["overlay"] for i in dx.indicators for a in [i.artifacts] if "overlay" in a), None)
            if made:
                overlay.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(made, overlay)
            else:
                err_console.print("no overlay: no indicator produced a mask", highlight=False)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if as_json:
        out = dx.model_dump(mode="json")
        out["workflow"] = dx.workflow
        print(json.dumps(out, indent=2))
        return
    _print_diagnosis(dx)


def _store():
    from dxgraph.store import Store

    return Store()


def _narrator():
    from dxgraph.config import load_settings, role_spec
    from dxgraph.models import load_model

    settings = load_settings()
    spec = role_spec(settings, "planner")
    return load_model(spec) if spec and spec not in ("rules", "scripted") else None


def _print_diagnosis(dx) -> None:
    table = Table("indicator", "value", "unit", "rule", "result", "time", title=f"{dx.workflow} v{dx.workflow_version}")
    for r in dx.indicators:
        value = "-" if r.value is None else (f"{r.value:.3f}" if isinstance(r.value, float) else str(r.value))
        result = "[yellow]unavailable[/yellow]" if r.status != "ok" else ("[red]pass[/red]" if r.passed else "[green]fail[/green]")
        cached = all(c.cached for c in r.calls) and r.calls
        table.add_row(r.id, value, r.unit or "", r.rule or "", result, f"{r.seconds:.2f} s" + (" (cached)" if cached else ""))
    console.print(table)
    for r in dx.indicators:
        if r.status != "ok":
            console.print(f"  {r.id}: {r.error}", highlight=False, markup=False)
        elif r.rationale:
            console.print(f"  {r.id}: {r.rationale}", highlight=False, markup=False)
    score = "" if dx.score is None else f" (score {dx.score:.2f}" + (f", threshold {dx.threshold}" if dx.threshold is not None else "") + ")"
    console.print(f"[bold]outcome:[/bold] {dx.outcome}{score}", highlight=False)
    if dx.note:
        console.print(f"note: {dx.note.split('; unavailable:')[0]}", highlight=False, markup=False)
    if dx.narrative:
        console.print(dx.narrative, highlight=False, markup=False)
    console.print(f"{dx.seconds:.2f} s; trace {dx.trace_id}. Research software, not for clinical use.", highlight=False)


def evaluate(
    workflow: Annotated[str, typer.Option("--workflow", "-w")],
    data: Annotated[Path, typer.Option("--data", "-d", help="folder with labels.csv")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit")] = None,
    samples: Annotated[bool, typer.Option("--samples", help="include per-sample results in the JSON")] = False,
) -> None:
    """Score a workflow on a labelled set: accuracy, balanced accuracy, F1, AUC, MAE per measurement."""
    from dxgraph.workflows.evaluate import evaluate_workflow
    from dxgraph.workflows.loader import find_workflow

    wf, _ = find_workflow(workflow)
    report = asyncio.run(evaluate_workflow(wf, data, limit=limit))
    if not samples:
        report.pop("samples")
    if as_json:
        print(json.dumps(report, indent=2))
        return
    m = report["metrics"]
    table = Table("metric", "value", title=f"{wf.id} on {data} (n={report['n']})")
    for k in ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1", "auc"):
        table.add_row(k, "-" if m.get(k) is None else f"{m[k]:.3f}")
    for k, v in m.items():
        if k.startswith("auc_") and v is not None:
            table.add_row(k, f"{v:.3f}")
    for name, e in report["mae"].items():
        table.add_row(f"MAE {name}", f"{e['mae']:.4f} (n={e['n']})")
    console.print(table)


@phantoms_app.command("generate")
def phantoms_generate(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="glaucoma | diabetic_retinopathy | cardiomegaly | hfref")],
    n: Annotated[int, typer.Option("-n", min=1, max=100000)] = 20,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path, typer.Option("-o", "--out")] = Path("phantoms"),
) -> None:
    """Write synthetic images with known truth and labels.csv (labelled synthetic)."""
    from dxgraph.tools.phantoms import generate

    path = generate(workflow, n, seed, out)
    console.print(f"wrote {n} synthetic {workflow} phantoms to {path}", highlight=False)


TOP_LEVEL = [diagnose, evaluate]
