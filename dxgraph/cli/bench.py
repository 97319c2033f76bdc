"""`dxgraph bench ...`: run, retry, report, compare and list dialogue benchmarks."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Optional

import typer

from dxgraph.errors import InputError

__all__ = ["app"]

app = typer.Typer(help="Dialogue benchmarks: simulated patients x temperaments x doctor strategies.",
                  no_args_is_help=True)

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL of the store (default: settings).")]


def _store(db: str | None):
    from dxgraph.store import Store

    return Store(db)


def _echo_summary(s) -> None:
    from dxgraph.cli import console

    console.print(f"run {s.run_id!r}: {s.status} — {s.samples_done}/{s.samples_total} done, "
                  f"{s.samples_failed} failed; this call ran {s.ran} ({s.errors} errors), "
                  f"skipped {s.skipped} already done, {s.seconds:.1f} s", highlight=False)
    if s.samples_failed:
        console.print(f"re-run the failed samples with: dxgraph bench retry {s.run_id}", highlight=False)


def _temperaments(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError(f"--temperaments {text!r} names none; use 'all' or a comma-separated list")
    return ["all"] if items == ["all"] else items


@app.command("run")
def run(
    run_id: Annotated[str, typer.Option("--run-id", help="Run name; reusing it resumes the run.")],
    cases: Annotated[str, typer.Option(help="'bundled' or a folder of case files.")] = "bundled",
    split: Annotated[str, typer.Option(help="train, test or all.")] = "test",
    doctor: Annotated[Optional[list[str]], typer.Option(help="Doctor model spec (repeat for several).")] = None,
    patient: Annotated[Optional[str], typer.Option(help="Patient model spec (default: rules).")] = None,
    judge: Annotated[Optional[str], typer.Option(help="Judge model spec (default: rules).")] = None,
    strategy: Annotated[Optional[list[str]], typer.Option(help="Doctor strategy (repeat for several).")] = None,
    temperaments: Annotated[str, typer.Option(help="'all' or a comma-separated list.")] = "all",
    limit: Annotated[Optional[int], typer.Option(help="Only the first N cases.")] = None,
    concurrency: Annotated[int, typer.Option(help="Consultations in flight at once.")] = 8,
    shard: Annotated[Optional[str], typer.Option(help="I/N: run one slice of the grid.")] = None,
    max_turns: Annotated[int, typer.Option(help="Doctor turns per consultation.")] = 14,
    timeout: Annotated[float, typer.Option(help="Seconds before a consultation is recorded as an error.")] = 600.0,
    db: DbOpt = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")] = True,
) -> None:
    """Run (or resume) a benchmark; every finished sample is stored at once."""
    from pydantic import ValidationError

    from dxgraph.bench.grid import BenchConfig
    from dxgraph.bench.runner import run_benchmark
    from dxgraph.config import load_settings, role_spec

    settings = load_settings()
    try:
        config = BenchConfig(
            run_id=run_id, cases=cases, split=None if split == "all" else split,
            doctors=doctor or [role_spec(settings, "doctor")],
            patient=patient or role_spec(settings, "patient"), judge=judge or role_spec(settings, "judge"),
            strategies=strategy or ["dialogue"], temperaments=_temperaments(temperaments), limit=limit,
            concurrency=concurrency, shard=shard, max_turns=max_turns, sample_timeout_s=timeout,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "option"
        raise InputError(f"--{field.replace('_', '-')}: {err['msg']}") from None
    summary = asyncio.run(run_benchmark(config, _store(db), progress=progress))
    _echo_summary(summary)


@app.command("retry")
def retry_cmd(
    run_id: Annotated[str, typer.Argument(help="The run whose failed samples to re-run.")],
    db: DbOpt = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Override the stored concurrency.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")] = True,
) -> None:
    """Re-run only the samples of a run that ended in an error."""
    from dxgraph.bench.runner import retry

    summary = asyncio.run(retry(run_id, _store(db), concurrency=concurrency, progress=progress))
    _echo_summary(summary)


@app.command("report")
def report_cmd(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    html_file: Annotated[Optional[str], typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    reps: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    db: DbOpt = None,
) -> None:
    """Metrics of a run with 95% bootstrap intervals (JSON, HTML or a table)."""
    from dxgraph.bench.report import build_report, write_html
    from dxgraph.cli import console

    rep = build_report(_store(db), run_id, reps=reps, seed=seed)
    if html_file:
        path = write_html(rep, html_file)
        if not as_json:
            console.print(f"wrote {path}", highlight=False)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    if not html_file:
        _print_report(rep)


def _print_report(rep: dict) -> None:
    from rich.table import Table

    from dxgraph.cli import console

    synthetic = {True: "synthetic cases", False: "imported cases", "mixed": "mixed cases"}.get(rep["synthetic"], "")
    console.print(f"run {rep['run_id']!r} ({rep['status']}): {rep['samples_done']}/{rep['samples_total']} done, "
                  f"{rep['samples_failed']} failed {('— ' + synthetic) if synthetic else ''}", highlight=False)
    metrics = ["top1_accuracy", "top3_accuracy", "macro_f1", "abstention_rate", "mean_turns", "facts_elicited"]
    for title, groups in (("overall", {"all": rep["metrics"].get("overall", {})}),
                          ("temperament", rep["metrics"].get("by_temperament", {})),
                          ("strategy", rep["metrics"].get("by_strategy", {}))):
        table = Table(title=title)
        table.add_column(title)
        for m in metrics:
            table.add_column(m)
        for name, block in groups.items():
            cells = []
            for m in metrics:
                v = block.get(m) or {}
                cells.append("–" if v.get("value") is None else f"{v['value']:.3f} [{v['ci_low']:.2f}, {v['ci_high']:.2f}]")
            table.add_row(name, *cells)
        console.print(table)


@app.command("compare")
def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="Run A.")],
    run_b: Annotated[str, typer.Argument(help="Run B (deltas are A - B).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    reps: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 1000,
    db: DbOpt = None,
) -> None:
    """Metric deltas between two runs, paired on shared samples where possible."""
    from rich.table import Table

    from dxgraph.bench.report import compare_runs
    from dxgraph.cli import console

    cmp = compare_runs(_store(db), run_a, run_b, reps=reps)
    if as_json:
        typer.echo(json.dumps(cmp, indent=2))
        return
    table = Table(title=f"{run_a} - {run_b} (paired on {cmp['paired_on']})")
    for col in ("metric", "A", "B", "A - B [95% CI]"):
        table.add_column(col)
    for name, v in cmp["metrics"].items():
        d = v["delta"]
        delta = "–" if d["value"] is None else f"{d['value']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
        table.add_row(name, "–" if v["a"] is None else f"{v['a']:.3f}", "–" if v["b"] is None else f"{v['b']:.3f}",
                      delta)
    console.print(table)


@app.command("list")
def list_cmd(db: DbOpt = None,
             as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Benchmark runs in the store, newest first."""
    from rich.table import Table

    from dxgraph.bench.runner import KIND
    from dxgraph.cli import console

    store = _store(db)
    rows = []
    for run in store.list_runs(KIND):
        rows.append({"run_id": run.id, "status": run.status, "samples_total": run.samples_total,
                     "samples_done": len(store.sample_keys(run.id, "done")),
                     "samples_failed": len(store.sample_keys(run.id, "error")),
                     "created_at": run.created_at.isoformat() if run.created_at else None})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="benchmark runs")
    for col in ("run", "status", "done", "failed", "total", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["run_id"], r["status"], str(r["samples_done"]), str(r["samples_failed"]),
                      str(r["samples_total"]), r["created_at"] or "")
    console.print(table)
