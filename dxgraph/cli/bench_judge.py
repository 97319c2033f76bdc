"""`dxgraph bench judge` and `dxgraph bench agreement`: judging stored transcripts as a step
of its own, and how far two judges agree."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Optional

import typer

from dxgraph.cli.bench import DbOpt, _check_specs, _say, _store, app
from dxgraph.errors import InputError

__all__: list[str] = []


@app.command("judge")
def judge_cmd(
    run_id: Annotated[str, typer.Argument(help="The run whose stored transcripts to judge.")],
    judge: Annotated[Optional[str], typer.Option(help="Judge model spec ('rules' or 'openai:MODEL@URL'); default: the run's.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name of a new judge in the run (default: the spec); "
                                                     "'run' or none with no --judge fills the run's own where it failed.")] = None,
    concurrency: Annotated[int, typer.Option(help="Transcripts judged at once.")] = 4,
    db: DbOpt = None,
) -> None:
    """Judge a run's stored transcripts: fill the run's own verdicts where its judge failed, or
    add another judge's beside the old ones (never overwriting)."""
    from dxgraph.bench.agents import AgentFactory
    from dxgraph.bench.rejudge import RUN_JUDGE, judge_run, run_judge_spec

    store = _store(db)
    own = run_judge_spec(store, run_id)
    if name is None:
        name = RUN_JUDGE if judge is None or judge == own else judge
    if name == RUN_JUDGE and judge not in (None, own):
        raise InputError(f"run {run_id!r} was judged by {own!r}; its own verdicts are filled by that judge only; "
                         f"add {judge!r} as a judge of its own with --name NAME")
    spec = judge or own
    _check_specs([("judge", spec, judge is not None)])
    factory = AgentFactory()

    async def go() -> int:
        try:
            return await judge_run(store, run_id, factory.judge(spec), name, concurrency=concurrency)
        finally:
            await factory.aclose()

    n = asyncio.run(go())
    if name == RUN_JUDGE:
        _say(f"judged {n} transcripts of run {run_id!r} that its judge {spec!r} had not scored; "
             f"report with: dxgraph bench report {run_id}")
        return
    _say(f"judged {n} transcripts of run {run_id!r} as {name!r}; "
         f"report with: dxgraph bench report {run_id} --judge {name}")


@app.command("agreement")
def agreement_cmd(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    judge_a: Annotated[str, typer.Argument(help="A stored judge ('run' is the run's own).")],
    judge_b: Annotated[str, typer.Argument(help="Another stored judge.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    reps: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 500,
    db: DbOpt = None,
) -> None:
    """Agreement of two judges: Cohen's kappa on correctness and each rubric item, with 95% CIs."""
    from dxgraph.bench.rejudge import agreement

    out = agreement(_store(db), run_id, judge_a, judge_b, reps=reps)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    _say(f"run {run_id!r}: {judge_a} vs {judge_b} on {out['samples']} samples (Cohen's kappa, 95% case bootstrap)")
    for item, v in [("correct", out["correct"]), *out["rubric"].items()]:
        k = "–" if v["kappa"] is None else f"{v['kappa']:.3f}"
        ci = "" if v["ci_low"] is None else f" [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
        _say(f"  {item}: kappa {k}{ci}, raw agreement {v['agreement']}, n={v['n']}")
    _say("  correctness confusion: " + ", ".join(f"{k}: {v}" for k, v in out["correct"]["confusion"].items()))
