"""`dxgraph bench ...`: run, retry, report, compare and list dialogue benchmarks."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Optional

import typer
from rich.markup import escape

from dxgraph.errors import InputError

__all__ = ["app"]

app = typer.Typer(help="Dialogue benchmarks: simulated patients x temperaments x doctor strategies.",
                  no_args_is_help=True)

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL of the store (default: settings).")]


def _store(db: str | None):
    from dxgraph.store import Store

    return Store(db)


def _reps(reps: int | None) -> int:
    """--reps, or the bootstrap setting shared with the demo."""
    if reps is not None:
        return reps
    from dxgraph.config import load_settings

    return load_settings().bootstrap_reps


FAILED_EXIT = 1
"""Exit code of ``run``/``retry`` when samples (of this shard, if sharded) ended in an error; 2 is bad input."""

_MAX_KINDS = 8


def _say(text: str) -> None:
    from dxgraph.cli import console

    # markup off: stored error messages may hold [brackets]; soft wrap keeps one line per fact.
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _echo_errors(kinds: list[dict], run_id: str) -> None:
    from dxgraph.bench.report import format_error_kind

    for group in kinds[:_MAX_KINDS]:
        _say("  " + format_error_kind(group))
    if len(kinds) > _MAX_KINDS:
        rest = sum(g["count"] for g in kinds[_MAX_KINDS:])
        _say(f"  ... and {rest} more of {len(kinds) - _MAX_KINDS} other kinds: dxgraph bench report {run_id} --json")


def _echo_summary(s, store) -> None:
    """The run's counts; when samples failed, their errors grouped by kind, the retry
    command, and ``typer.Exit(FAILED_EXIT)`` so a script notices.

    A shard (``--shard I/N``) answers for its own samples only: one worker's exit code must
    not flip on another worker's failures (a restarting container would loop on them).
    """
    from dxgraph.bench.grid import parse_shard, shard_of
    from dxgraph.cli import console

    console.print(f"run {s.run_id!r}: {s.status} — {s.samples_done}/{s.samples_total} done, "
                  f"{s.samples_failed} failed; this call ran {s.ran} ({s.errors} errors), "
                  f"skipped {s.skipped} already done, {s.seconds:.1f} s", highlight=False)
    run = store.get_run(s.run_id)
    overlap = json.loads(run.config_json or "{}").get("train_overlap") if run is not None else None
    if overlap:
        from dxgraph.bench.report import overlap_note

        _say(overlap_note({"evaluated_on_training_cases": len(overlap)}))
    if s.judge_errors:
        _say(f"{s.judge_errors} dialogues are stored but not judged (the judge failed; not counted as answers): "
             f"judge them with: dxgraph bench judge {s.run_id}")
    if not s.samples_failed:
        if s.judge_errors:
            raise typer.Exit(FAILED_EXIT)
        return
    from dxgraph.bench.report import error_kinds

    failed = store.samples(s.run_id, "error")
    shard = parse_shard(s.shard)
    mine = ""
    if shard.count > 1:
        failed = [r for r in failed if shard_of(r.key, shard.count) == shard.index]
        if not failed:
            _say(f"shard {shard} completed all its samples; the run's failed samples ({s.samples_failed}) are in "
                 f"other shards: dxgraph bench report {s.run_id}")
            return
        mine = f"{len(failed)} in shard {shard}; "
    _say("failed samples by error kind:")
    _echo_errors(error_kinds(failed), s.run_id)
    _say(f"completed {s.samples_done}, failed {s.samples_failed} of {s.samples_total} samples ({mine}the failures "
         f"are stored): fix the cause, then re-run only those with: dxgraph bench retry {s.run_id}")
    raise typer.Exit(FAILED_EXIT)


# BenchConfig field -> the flag a user typed, so a validation error names that flag.
_FLAGS = {"sample_timeout_s": "timeout", "doctors": "doctor", "strategies": "strategy", "run_id": "run-id",
          "max_turns": "max-turns"}


def _spec_source(role: str) -> str:
    """Where a role's model spec came from when no flag gave it: the variable, else file:line."""
    import os

    var = f"DXGRAPH_{role.upper()}_MODEL"
    if os.environ.get(var):
        return var
    path = os.environ.get("DXGRAPH_CONFIG") or "dxgraph.yaml"
    try:
        from dxgraph.yamlfile import line_for, lines_and_duplicates

        with open(path, encoding="utf-8") as f:
            lines, _ = lines_and_duplicates(f.read(), path)
        return f"{path}:{line_for(lines, ('models', role))}: models.{role}"
    except Exception:  # noqa: BLE001 - only the message's pointer is lost
        return f"{path}: models.{role}"


def _check_specs(specs: list[tuple[str, str, bool]]) -> None:
    """Parse every ``(role, spec, from_flag)`` before a run exists: a typo in a spec would
    otherwise be stored as one ConfigError per sample (340 of them for the bundled grid)."""
    from dxgraph.errors import ConfigError
    from dxgraph.models import parse_spec

    for role, spec, from_flag in specs:
        where = f"--{role}" if from_flag else _spec_source(role)
        try:
            provider = parse_spec(spec)[0]
        except ConfigError as exc:
            raise InputError(f"{where}: {exc}") from None
        if provider == "scripted":
            raise InputError(f"{where}: 'scripted' is built in code (ScriptedModel); use 'rules', "
                             "'openai:MODEL@URL' or 'local:...'")
        if provider == "rules" and role not in ("doctor", "patient", "judge"):
            raise InputError(f"{where}: no rule baseline for role {role!r}")


def _check_train_cases(cases: str, doctors: list[str], flag: str = "--cases") -> None:
    """The rule doctor learns from the case set's train split; without one every sample
    would be stored as the same InputError."""
    if "rules" not in doctors:
        return
    from dxgraph.simulator.cases import load_cases

    if not load_cases(cases, split="train"):
        raise InputError(f"{flag} {cases!r} has no train cases, and the rule doctor ('rules', the default "
                         "--doctor) learns from them; re-import with more cases per label or a --train-fraction "
                         "that puts some in train, or choose an LLM --doctor")


def _interrupted(run_id: str, store, resume: str) -> None:
    """Ctrl-C: say how much is stored and how to go on (the runner has marked the run)."""
    from dxgraph.cli import err_console

    run = store.get_run(run_id)
    done = len(store.sample_keys(run_id, "done")) if run is not None else 0
    total = run.samples_total if run is not None else 0
    status = f" (run status: {run.status})" if run is not None else ""
    err_console.print(f"interrupted: {done} of {total} done are stored{status}; resume with: {resume}",
                      highlight=False, markup=False, soft_wrap=True)


def _temperaments(values: list[str] | None) -> list[str]:
    from dxgraph.cli.examples import split_items

    items = split_items(values or ["all"])
    if not items:
        raise InputError(f"--temperaments {','.join(values or [])!r} names none; use 'all' or a comma-separated list")
    return ["all"] if items == ["all"] else items


@app.command("run")
def run(
    run_id: Annotated[str, typer.Option("--run-id", help="Run name; reusing it resumes the run.")],
    cases: Annotated[str, typer.Option(help="'bundled' or a folder of case files.")] = "bundled",
    split: Annotated[Optional[str], typer.Option(help="train, test or all (default: test; under --protocol 3mdbench every case).")] = None,
    doctor: Annotated[Optional[list[str]], typer.Option(help="Doctor model spec (repeat or comma-separate for several).")] = None,
    patient: Annotated[Optional[str], typer.Option(help="Patient model spec (default: rules).")] = None,
    judge: Annotated[Optional[str], typer.Option(help="Judge model spec (default: rules).")] = None,
    strategy: Annotated[Optional[list[str]], typer.Option(help="Doctor strategy (repeat or comma-separate for several).")] = None,
    temperaments: Annotated[Optional[list[str]], typer.Option(help="'all' or temperaments (repeat or comma-separate).  [default: all]")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Only N cases, drawn seeded and stratified by label.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --limit draw.")] = 0,
    allow_train_overlap: Annotated[bool, typer.Option(
        "--allow-train-overlap", help="Run even on cases in the rule doctor's knowledge base (marked in reports).")] = False,
    cases_file: Annotated[Optional[str], typer.Option("--cases-file",
                                                      help="Run exactly the case ids listed in this file.")] = None,
    protocol: Annotated[str, typer.Option(help="dxgraph, or 3mdbench: every case once with its own personality.")] = "dxgraph",
    kb_cases: Annotated[Optional[str], typer.Option("--kb-cases", help="Case set whose train split is the rule doctor's knowledge base.")] = None,
    hints: Annotated[Optional[str], typer.Option(help="For strategy dialogue+hints: a CSV case_id,label1,label2,... or "
                                                      "classifier:PATH, a local image classifier folder.")] = None,
    concurrency: Annotated[int, typer.Option(help="Consultations in flight at once.")] = 8,
    shard: Annotated[Optional[str], typer.Option(help="I/N: run one slice of the grid.")] = None,
    max_turns: Annotated[int, typer.Option(help="Doctor turns per consultation.")] = 14,
    timeout: Annotated[float, typer.Option(help="Seconds before a consultation is recorded as an error.")] = 600.0,
    db: DbOpt = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")] = True,
) -> None:
    """Run (or resume) a benchmark; every finished sample is stored at once.

    Exit code: 0 when all samples completed, 1 when any failed (stored; `dxgraph bench retry RUN_ID`), 2 on bad input.
    """
    from pydantic import ValidationError

    from dxgraph.bench.grid import BenchConfig, read_case_ids
    from dxgraph.bench.runner import run_benchmark
    from dxgraph.config import load_settings, role_spec

    import shlex
    import sys

    from dxgraph.cli.examples import split_items

    doctor, strategy = split_items(doctor), split_items(strategy)
    settings = load_settings()
    doctors = doctor or [role_spec(settings, "doctor")]
    patient_spec, judge_spec = patient or role_spec(settings, "patient"), judge or role_spec(settings, "judge")
    _check_specs([*(("doctor", d, bool(doctor)) for d in doctors), ("patient", patient_spec, bool(patient)),
                  ("judge", judge_spec, bool(judge))])
    from dxgraph.bench.protocol import check_options, default_strategies

    strategy = strategy or default_strategies(protocol, hints)
    check_options(protocol, split=split, temperaments=temperaments, strategies=strategy, hints=hints)
    split = None if protocol == "3mdbench" else (split or "test")
    try:
        config = BenchConfig(
            run_id=run_id, cases=cases, split=None if split == "all" else split,
            doctors=doctors, patient=patient_spec, judge=judge_spec,
            strategies=strategy, temperaments=_temperaments(temperaments), limit=limit,
            seed=seed, case_ids=read_case_ids(cases_file) if cases_file else None,
            allow_train_overlap=allow_train_overlap, protocol=protocol, kb_cases=kb_cases, hints=hints,
            concurrency=concurrency, shard=shard, max_turns=max_turns, sample_timeout_s=timeout,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "option"
        raise InputError(f"--{_FLAGS.get(field, field.replace('_', '-'))}: {err['msg']}") from None
    _check_train_cases(config.knowledge_source(), config.doctors, "--kb-cases" if kb_cases else "--cases")
    store = _store(db)
    try:
        summary = asyncio.run(run_benchmark(config, store, progress=progress))
    except KeyboardInterrupt:
        # Exit 130 like any interrupted command, but after saying what is kept.
        same = (" ".join(shlex.quote(a) for a in sys.argv[3:]) if sys.argv[1:3] == ["bench", "run"]
                else f"--run-id {shlex.quote(run_id)} <same options>")
        # Not `bench retry`: it re-runs errored samples only, never the ones not started.
        _interrupted(run_id, store, f"dxgraph bench run {same}")
        raise typer.Exit(130) from None
    _echo_summary(summary, store)


@app.command("retry")
def retry_cmd(
    run_id: Annotated[str, typer.Argument(help="The run whose failed samples to re-run.")],
    db: DbOpt = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Override the stored concurrency.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")] = True,
) -> None:
    """Re-run only the samples of a run that ended in an error.

    Exit code: 0 when all samples of the run are now complete, 1 when any still fails, 2 on bad input.
    """
    from dxgraph.bench.runner import retry

    store = _store(db)
    try:
        summary = asyncio.run(retry(run_id, store, concurrency=concurrency, progress=progress))
    except KeyboardInterrupt:
        _interrupted(run_id, store, f"dxgraph bench retry {run_id}")
        raise typer.Exit(130) from None
    _echo_summary(summary, store)


@app.command("report")
def report_cmd(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    html_file: Annotated[Optional[str], typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    reps: Annotated[Optional[int], typer.Option(help="Bootstrap replicates (default: settings' bootstrap_reps, 1000; the demo uses the same).")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    judge: Annotated[Optional[str], typer.Option(help="Score with this stored judge (default: the run's).")] = None,
    db: DbOpt = None,
) -> None:
    """Metrics of a run with 95% bootstrap intervals (JSON, HTML or a table)."""
    from dxgraph.bench.report import build_report, check_writable, write_html
    from dxgraph.cli import console

    if html_file:
        check_writable(html_file, "--html")
    store = _store(db)
    rep = build_report(store, run_id, reps=_reps(reps), seed=seed, judge=judge)
    if html_file:
        from dxgraph.bench.report import load_outcomes
        from dxgraph.bench.report_samples import sample_rows

        path = write_html(rep, html_file, sample_rows(store, run_id, load_outcomes(store, run_id, judge)[0]))
        if not as_json:
            console.print(f"wrote {path}", highlight=False)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    if not html_file:
        from dxgraph.cli.bench_report import print_report

        print_report(rep)


@app.command("compare")
def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="Run A.")],
    run_b: Annotated[str, typer.Argument(help="Run B (deltas are A - B).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    reps: Annotated[Optional[int], typer.Option(help="Bootstrap replicates (default: settings' bootstrap_reps, 1000; the demo uses the same).")] = None,
    db: DbOpt = None,
) -> None:
    """Metric deltas between two runs, paired on shared samples where possible."""
    from rich.table import Table

    from dxgraph.bench.report import compare_runs
    from dxgraph.cli import console

    cmp = compare_runs(_store(db), run_a, run_b, reps=_reps(reps))
    if as_json:
        typer.echo(json.dumps(cmp, indent=2))
        return
    table = Table(title=f"{run_a} - {run_b} (paired on {cmp['paired_on']})")
    for col in ("metric", "A", "B", "A - B [95% CI]"):
        table.add_column(col, overflow="fold")
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
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(escape(r["run_id"]), r["status"], str(r["samples_done"]), str(r["samples_failed"]),
                      str(r["samples_total"]), r["created_at"] or "")
    console.print(table)

