"""``dxgraph workflows ...`` and the top-level ``diagnose``, ``evaluate``, ``phantoms``."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Column, Table

from dxgraph.cli import console, err_console
from dxgraph.errors import ConfigError, InputError

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
    # ids and paths are what a user copies: they are never cut; the names wrap instead
    table = Table(_key_column("id", [it["id"] for it in items]), "name", Column("version", no_wrap=True),
                  Column("path", overflow="fold"))
    for it in items:
        table.add_row(*(escape(it[k]) for k in ("id", "name", "version", "path")))
    console.print(table)


@app.command()
def show(workflow: Annotated[str, typer.Argument(help="built-in id or path to a YAML file")]) -> None:
    """Show a workflow's plan, rules, decision and guideline sources."""
    from dxgraph.agents.planner import compile_plan
    from dxgraph.workflows.loader import find_workflow

    wf, path = find_workflow(workflow)
    plan = compile_plan(wf)
    console.print(f"[bold]{escape(wf.name)}[/bold]  ({escape(str(path))})", highlight=False)
    console.print(plan.describe(), highlight=False, markup=False)
    d = wf.decision
    console.print(f"decision: {d.method}" + (f", threshold {d.threshold}" if d.threshold is not None else "")
                  + (f", k {d.k}" if d.k else ""), highlight=False, markup=False)
    console.print(f"outcomes: positive = {wf.outcomes.positive!r}; negative = {wf.outcomes.negative!r}", highlight=False, markup=False)
    for ref in wf.references:
        console.print(f"[{ref.id}] {ref.citation}" + (f" {ref.url}" if ref.url else ""), highlight=False, markup=False)


@app.command()
def validate(targets: Annotated[list[str], typer.Argument(help="workflow YAML files, folders of them, or built-in ids")]) -> None:
    """Validate workflow files: exit 0 if all are valid, else print every error (by file and line) and exit 2."""
    from dxgraph.workflows.loader import WorkflowErrors, load_workflow

    files: list[Path] = []
    errors: list[tuple[str, int, str]] = []  # (file, line, message), printed sorted
    unresolved: list[str] = []  # targets that name no file: plain errors, like any command's
    for target in targets:
        try:
            files += _workflow_files(target)
        except ConfigError as exc:
            unresolved.append(str(exc))
    for f in dict.fromkeys(files):  # a file named twice (alone and in its folder) is checked once
        try:
            wf = load_workflow(f)
            console.print(f"[green]ok[/green] {escape(str(f))} ({escape(wf.id)} v{escape(wf.version)}, {len(wf.indicators)} indicators)", highlight=False)
        except WorkflowErrors as exc:
            errors += [(e.file or str(f), e.line or 0, str(e)) for e in exc.errors]
        except ConfigError as exc:
            errors.append((exc.file or str(f), exc.line or 0, str(exc)))
    for message in unresolved:
        err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    for _, _, message in sorted(errors, key=lambda e: e[:2]):
        err_console.print(message, highlight=False, markup=False, soft_wrap=True)
    if errors:
        bad = len({file for file, _, _ in errors})
        err_console.print(f"{len(errors)} error(s) in {bad} of {len(set(files))} workflow file(s)",
                          highlight=False, markup=False)
    if errors or unresolved:
        raise typer.Exit(2)


def _workflow_files(target: str) -> list[Path]:
    """A file as given; a folder's *.yaml and *.yml files; a built-in id's file."""
    from dxgraph.workflows.loader import builtin_dir

    p = Path(target)
    if p.is_dir():
        found = sorted({*p.glob("*.yaml"), *p.glob("*.yml")})
        if not found:
            raise ConfigError(f"folder {target!r} holds no .yaml or .yml files")
        return found
    if p.exists():
        return [p]
    builtin = builtin_dir() / f"{target}.yaml"
    if p.suffix not in (".yaml", ".yml") and builtin.is_file():
        return [builtin]
    if p.suffix in (".yaml", ".yml") or len(p.parts) > 1:
        raise ConfigError(f"workflow file {target!r} does not exist")
    ids = sorted(x.stem for x in builtin_dir().glob("*.yaml"))
    raise ConfigError(f"{target!r} is not a file, a folder or a built-in workflow id ({', '.join(ids)})")


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (for editor validation)."""
    from dxgraph.workflows.schema import Workflow

    s = Workflow.model_json_schema()
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["title"] = "dxgraph workflow"
    print(json.dumps(s, indent=2))


@app.command()
def tools(as_json: Annotated[bool, typer.Option("--json", help="one JSON array of tool schemas on stdout")] = False) -> None:
    """List the registered tools with their inputs, args and outputs."""
    from dxgraph.tools.registry import registry

    specs = sorted(registry().values(), key=lambda s: s.name)
    if as_json:
        print(json.dumps([s.json_schema() for s in specs], indent=2, default=str))
        return
    table = Table(_key_column("tool", [s.name for s in specs]), Column("version", no_wrap=True),
                  *(Column(c, overflow="fold") for c in ("inputs", "args", "outputs", "description")))
    for s in specs:
        # Tool descriptions are docstrings: their Sphinx ``literals`` read as `literals` here.
        description = re.sub(r"``([^`]+)``", r"\1", s.description)
        table.add_row(*(escape(x) for x in (s.name, s.version, ", ".join(s.inputs), ", ".join(s.args), ", ".join(s.outputs), description)))
    console.print(table)


def _key_column(header: str, values: list[str]) -> Column:
    """A column a narrow terminal never cuts: its cells are names a user types back."""
    return Column(header, no_wrap=True, min_width=max([len(header), *map(len, values)]))


def check_output_file(path: Path, option: str, *, force: bool | None = None, example: str = "out.yaml") -> None:
    """Refuse an output file that cannot be written, before any work is done.

    Without it a long run (a calibration fit, a workflow run) ends in a traceback from the
    final write. Root passes ``os.access`` everywhere, so the folder is probed with a real
    temporary file. ``force`` None means the command overwrites without asking.
    """
    shown = str(path)
    if path.is_dir():
        raise InputError(f"{option} {shown!r} is a folder; give a file path in it, e.g. {str(path / example)!r}")
    if path.exists() and force is False:
        raise InputError(f"{option} {shown!r} already exists; pass --force to overwrite it, or choose another path")
    folder = next(d for d in [path.parent, *path.parent.parents] if d.exists() or d == d.parent)
    if not folder.is_dir():
        raise InputError(f"cannot write {option} {shown!r}: {str(folder)!r} is a file, not a folder; choose another path")
    try:
        if path.exists():
            with path.open("ab"):
                pass
        else:
            with tempfile.TemporaryFile(dir=folder):
                pass
    except OSError as exc:
        where = shown if path.exists() else str(folder)
        raise InputError(f"cannot write {option} {shown!r}: {where!r} is not writable "
                         f"({exc.strerror or exc}); choose another path") from None


_SAMPLE_HELP = ("image path, or sample:NAME with NAME one of retina, microaneurysms, ct, mr, nifti; once per "
                "workflow input (repeat or comma-separate)")


def diagnose(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="built-in id or YAML path")],
    image: Annotated[list[str], typer.Option("--image", "-i", help=_SAMPLE_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
    overlay: Annotated[Optional[Path], typer.Option("--overlay", help="write a segmentation overlay to this .png file")] = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="save the diagnosis in the store")] = True,
) -> None:
    """Run a diagnostic workflow on images and show the evidence behind the outcome."""
    from dxgraph.agents.diagnose import check_images, run_workflow

    if overlay is not None:
        if overlay.suffix.lower() != ".png" and not overlay.is_dir():
            raise InputError(f"--overlay {str(overlay)!r} must be a .png file path (the overlay is a PNG image)")
        check_output_file(overlay, "--overlay", example="overlay.png")
    from dxgraph.cli.examples import split_items

    image = split_items(image, keep_paths=True)
    check_images(workflow, image)  # a bad file is a one-line error and exit 2, not an "indeterminate" run
    st = _store() if store else None
    tmp = tempfile.mkdtemp(prefix="dxgraph-overlay-") if overlay else None
    try:
        dx = asyncio.run(run_workflow(workflow, image, overlay_dir=tmp, narrator=_narrator()))
        if overlay:
            dx = _keep_overlay(dx, overlay)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if st is not None:
        st.save_diagnosis(dx)  # after _keep_overlay, so the stored artifacts name files that exist
    if as_json:
        out = dx.model_dump(mode="json")
        out["workflow"] = dx.workflow
        print(json.dumps(out, indent=2))
        return
    _print_diagnosis(dx)
    kept = [i.artifacts["overlay"] for i in dx.indicators if "overlay" in i.artifacts]
    if overlay and kept:
        console.print(f"overlay: {kept[0]}", highlight=False, markup=False, soft_wrap=True)


def _keep_overlay(dx, overlay: Path):
    """Copy the first overlay to the path asked for and point the diagnosis at it.

    The overlays are drawn in a temporary folder that is deleted after the run; an
    artifact path left pointing there would name a file that no longer exists.
    """
    made = [i for i in dx.indicators if "overlay" in i.artifacts]
    if not made:
        err_console.print("no overlay: no indicator produced a mask", highlight=False)
        return dx
    try:
        overlay.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made[0].artifacts["overlay"], overlay)
    except OSError as exc:  # checked before the run, but the disk may have changed since
        raise InputError(f"cannot write --overlay {str(overlay)!r}: {exc.strerror or exc}; choose another path") from None
    if len(made) > 1:
        err_console.print(f"overlay of {made[0].id!r} written to {overlay}; not kept: {', '.join(i.id for i in made[1:])}",
                          highlight=False, markup=False)
    kept = {made[0].id: str(overlay.resolve())}

    def fixed(ind):
        artifacts = {k: v for k, v in ind.artifacts.items() if k != "overlay"}
        if ind.id in kept:
            artifacts["overlay"] = kept[ind.id]
        return ind.model_copy(update={"artifacts": artifacts})

    return dx.model_copy(update={"indicators": [fixed(i) for i in dx.indicators]})


def _store():
    from dxgraph.store import Store

    return Store()


def _narrator():
    from dxgraph.config import load_settings
    from dxgraph.models.roles import for_role

    return for_role(load_settings(), "planner")


def _print_diagnosis(dx) -> None:
    table = Table("indicator", "value", "unit", "abnormal if", "finding", "time", title=escape(f"{dx.workflow} v{dx.workflow_version}"))
    for r in dx.indicators:
        value = "-" if r.value is None else (f"{r.value:.3f}" if isinstance(r.value, float) else str(r.value))
        # abnormal = warning colour: a sign present is red, absent green, anything else yellow
        result = {"sign present": "[red]sign present[/red]", "sign absent": "[green]sign absent[/green]"}.get(
            r.finding, f"[yellow]{r.finding}[/yellow]")
        cached = all(c.cached for c in r.calls) and r.calls
        table.add_row(escape(r.id), escape(value), escape(r.unit or ""), escape(r.rule or ""), result,
                      f"{r.seconds:.2f} s" + (" (cached)" if cached else ""))
    console.print(table)
    for r in dx.indicators:
        if r.status != "ok":
            console.print(f"  {r.id}: {r.error}", highlight=False, markup=False)
        elif r.rationale:
            console.print(f"  {r.id}: {r.rationale}", highlight=False, markup=False)
    from dxgraph.agents.assessor import describe_score

    # the score is a weighted count of signs, not a probability: say which, and on how much evidence
    score = describe_score(dx)
    console.print(f"[bold]outcome:[/bold] {escape(dx.outcome)}" + (f" ({escape(score)})" if score else ""), highlight=False)
    if dx.note:
        console.print(f"note: {dx.note.split('; unavailable:')[0]}", highlight=False, markup=False)
    if dx.narrative:
        console.print(dx.narrative, highlight=False, markup=False)
    console.print(f"{dx.seconds:.2f} s; trace {dx.trace_id}. Research software, not for clinical use.", highlight=False, markup=False)


def evaluate(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="built-in id or YAML path")],
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help="folder with labels.csv")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="FORMAT:PATH, a public data set in its own "
                                                   "layout ('dxgraph datasets list')")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="evaluate only the first N rows")] = None,
    samples: Annotated[bool, typer.Option("--samples", help="include per-sample results in the JSON")] = False,
) -> None:
    """Score a workflow on a labelled set: accuracy, balanced accuracy, F1, AUC, MAE per measurement."""
    from dxgraph.bench.evaluate import evaluate_workflow
    from dxgraph.workflows.loader import find_workflow

    if (data is None) == (dataset is None):
        raise typer.BadParameter("give either --data FOLDER (with labels.csv) or --dataset FORMAT:PATH",
                                 param_hint="--data / --dataset")
    wf, _ = find_workflow(workflow)
    rows = None
    if dataset is not None:
        from dxgraph.bench.datasets import load_dataset

        rows = load_dataset(dataset, wf.id, [s.name for s in wf.inputs])
        data = Path(dataset)
    from dxgraph.cli.progress import phase

    with phase(f"running {wf.id} on {data}", quiet=as_json):
        report = asyncio.run(evaluate_workflow(wf, data, limit=limit, rows=rows))
    if not samples:
        report.pop("samples")
    if as_json:
        print(json.dumps(report, indent=2))
        return
    m = report["metrics"]
    n, determinate = report["n"], report["n_determinate"]
    table = Table("metric", "value", title=escape(f"{wf.id} on {data} (n={n})"))
    table.add_row("coverage", "-" if report["coverage"] is None else f"{report['coverage']:.3f} ({determinate} of {n} determinate)")
    for k in ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1", "auc"):
        table.add_row(k, "-" if m.get(k) is None else f"{m[k]:.3f}")
    for k, v in m.items():
        if k.startswith("auc_") and v is not None:
            table.add_row(k, f"{v:.3f}")
    for name, e in report["mae"].items():
        table.add_row(f"MAE {name}", f"{e['mae']:.4f} (n={e['n']})")
    console.print(table)
    ids = report["indeterminate_ids"]
    if ids:
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        console.print(f"{len(ids)} indeterminate sample(s) ({', '.join(ids[:5])}{more}) are excluded from accuracy, "
                      f"sensitivity, specificity, F1 and AUC: those are over the {determinate} determinate samples "
                      f"(--json --samples lists every outcome)", highlight=False, markup=False)


@phantoms_app.command("generate")
def phantoms_generate(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="glaucoma | diabetic_retinopathy | cardiomegaly | hfref")],
    n: Annotated[int, typer.Option("-n", "--n", "--count", min=1, max=100000, help="number of cases, half positive")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="the same seed gives the same set; 0-999 for development, "
                                                     "10000 and above held out")] = 0,
    out: Annotated[Path, typer.Option("-o", "--out", help="folder to write the images, labels.csv and README.txt into")]
    = Path("phantoms"),
    force: Annotated[bool, typer.Option("--force", help="replace a phantom set already in --out")] = False,
    family: Annotated[str, typer.Option("--family", help="a: the family the segmenters were tuned on; b: fundus "
                                                         "photographs drawn differently, never used in tuning "
                                                         "(glaucoma, diabetic_retinopathy)")] = "a",
) -> None:
    """Write synthetic images with known truth and labels.csv (labelled synthetic)."""
    from dxgraph.phantoms import generate

    replacing = (out / "labels.csv").is_file()
    from dxgraph.cli.progress import phase

    with phase(f"generating {n} synthetic {workflow} phantoms"):
        path = generate(workflow, n, seed, out, force=force, family=family)
    console.print(f"wrote {n} synthetic {workflow} phantoms (family {family}) to {path}"
                  + (" (replaced the set that was there)" if replacing else ""), highlight=False, markup=False)


TOP_LEVEL = [diagnose, evaluate]
