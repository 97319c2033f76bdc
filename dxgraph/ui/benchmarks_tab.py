"""The Benchmarks tab: runs from the store, their metrics with confidence intervals and
plots, and any sample's transcript.

Consultations from the Consult tab are runs too (kind ``consult``), but they are visitors'
conversations: they are never listed here, so no visitor can read another's.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict

import gradio as gr
import pandas as pd

from dxgraph.errors import DxGraphError
from dxgraph.bench.record import SampleResult
from dxgraph.bench.report import METRIC_LABELS, overlap_note, protocol_line, shown_metrics
from dxgraph.types import Turn
from dxgraph.ui import render
from dxgraph.ui.consult import KIND as CONSULT_KIND
from dxgraph.ui.services import Services

__all__ = ["build_benchmarks_tab", "list_runs", "run_view", "sample_view", "metric_frame", "cached_report"]

log = logging.getLogger("dxgraph.ui")

_RUN_COLUMNS = ["run", "kind", "status", "samples", "created"]
_SAMPLE_COLUMNS = ["sample", "case", "temperament", "strategy", "doctor", "status", "answer", "correct"]


def list_runs(services: Services) -> pd.DataFrame:
    """Benchmark runs, newest first (never the visitors' consultations)."""
    rows = [[r.id, r.kind, r.status, r.samples_total, r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else ""]
            for r in services.store.list_runs() if r.kind != CONSULT_KIND]
    return pd.DataFrame(rows, columns=_RUN_COLUMNS)


def _fmt(block: dict | None) -> str:
    if not block or block.get("value") is None:
        return "–"
    return f"{block['value']:.3f} [{block['ci_low']:.3f}, {block['ci_high']:.3f}]"


def metric_frame(groups: dict[str, dict], first: str, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per group, one column per metric the CLI shows (same words), each ``value [95% CI]``."""
    metrics = metrics or shown_metrics({})
    rows = [[name] + [_fmt(block.get(m)) for m in metrics] + [str((block.get("top1_accuracy") or {}).get("n", ""))]
            for name, block in groups.items()]
    return pd.DataFrame(rows, columns=[first, *(METRIC_LABELS.get(m, m) for m in metrics), "n"])


def _plot_frame(groups: dict[str, dict], metric: str, by: str) -> pd.DataFrame:
    rows = [{by: name, metric: block[metric]["value"]} for name, block in groups.items()
            if (block.get(metric) or {}).get("value") is not None]
    return pd.DataFrame(rows, columns=[by, metric])


def _sample_rows(services: Services, run_id: str) -> pd.DataFrame:
    rows = []
    for s in services.store.samples(run_id):
        result = SampleResult.from_json(s.result_json) if s.status == "done" and s.result_json else None
        judge = result.judge if result else None
        answer = result.final.label if result else None
        correct = "" if not judge else ("yes" if judge.correct else "no")
        rows.append([s.key, s.case_id, s.temperament, s.strategy, s.doctor, s.status, answer or "–", correct])
    return pd.DataFrame(rows, columns=_SAMPLE_COLUMNS)


_REPORTS: OrderedDict[tuple, dict] = OrderedDict()
_REPORTS_MAX = 32


def cached_report(services: Services, run_id: str, reps: int, judge: str | None = None) -> dict:
    """The run's report, computed once per run, judge and state of the run: a finished run is
    read from the cache; a run still going (or re-judged) changes its key and is recomputed."""
    from dxgraph.bench.report import build_report

    run = services.store.get_run(run_id)
    rows = services.store.samples(run_id) if run is not None else []
    key = (services.db_url, run_id, judge, reps, getattr(run, "status", None), len(rows),
           sum(1 for r in rows if r.status == "done"), getattr(run, "updated_at", None))
    if key in _REPORTS:
        _REPORTS.move_to_end(key)
        return _REPORTS[key]
    report = build_report(services.store, run_id, reps=reps, judge=judge)
    _REPORTS[key] = report
    while len(_REPORTS) > _REPORTS_MAX:
        _REPORTS.popitem(last=False)
    return report


def run_view(services: Services, run_id: str | None, reps: int | None = None):
    """``(summary html, overall, by temperament, by strategy, plot by temperament,
    plot by strategy, samples, sample choices, details visibility)`` for one run."""
    empty = pd.DataFrame()
    if not run_id:
        return ("", empty, empty, empty, empty, empty, empty, gr.update(choices=[], value=None),
                gr.update(visible=False))
    try:
        report = cached_report(services, run_id, services.settings.bootstrap_reps if reps is None else reps)
    except DxGraphError as exc:
        return (render.message_html(str(exc)), empty, empty, empty, empty, empty, empty,
                gr.update(choices=[], value=None), gr.update(visible=False))
    m = report["metrics"]
    synthetic = {True: "All cases are synthetic vignettes: these figures are not clinical evidence.",
                 "mixed": "A mix of synthetic and imported cases."}.get(report.get("synthetic"), "")
    failed = (f" Metrics cover the {report['samples_done']} completed samples; 'top-1 all assigned' counts the "
              f"{report['samples_failed']} failed ones as wrong." if report["samples_failed"] else "")
    summary = render.message_html(
        f"Run {report['run_id']} · {report['status']} · {report['samples_done']} of {report['samples_total']} "
        f"samples done, {report['samples_failed']} failed · {protocol_line(report)} · 95% bootstrap CIs over "
        f"cases ({report['bootstrap']['reps']} replicates); abstentions count as wrong.{failed} {synthetic}", "info")
    if overlap_note(report):  # a run on the doctor's own knowledge base says so wherever it is shown
        summary = render.message_html(overlap_note(report), "error") + summary
    shown = shown_metrics(report)
    samples = _sample_rows(services, run_id)
    keys = list(samples["sample"]) if len(samples) else []
    return (summary,
            metric_frame({"all": m.get("overall") or {}}, "overall", shown),
            metric_frame(m.get("by_temperament") or {}, "temperament", shown),
            metric_frame(m.get("by_strategy") or {}, "strategy", shown),
            _plot_frame(m.get("by_temperament") or {}, "top1_accuracy", "temperament"),
            _plot_frame(m.get("by_strategy") or {}, "top1_accuracy", "strategy"),
            samples,
            gr.update(choices=keys, value=keys[0] if keys else None),
            gr.update(visible=bool(keys)))


def sample_view(services: Services, run_id: str | None, key: str | None):
    """``(whole transcript html, conclusion html)`` of one stored sample."""
    if not run_id or not key:
        return render.transcript_html([]), ""
    run = services.store.get_run(run_id)
    if run is None or run.kind == CONSULT_KIND:
        return render.transcript_html([]), render.message_html(f"no benchmark run {run_id!r}")
    rows = services.store.turns(run_id, key)
    # The store keeps no end flag: a stored transcript ends with the doctor's conclusion.
    turns = [Turn(index=t.index, role=t.role, text=t.text, latency_ms=t.latency_ms,
                  revealed_facts=json.loads(t.revealed_json or "[]"), end=i == len(rows) - 1 and t.role == "doctor")
             for i, t in enumerate(rows)]
    row = next((s for s in services.store.samples(run_id) if s.key == key), None)
    card = ""
    facts: dict[str, str] = {}
    if row is not None:
        case = _case(services, row.case_id)
        facts = {f.id: f.category for f in case.facts} if case is not None else {}
        if row.status != "done":
            card = render.message_html(f"This sample failed: {row.error}")
        elif row.result_json:
            result = SampleResult.from_json(row.result_json)
            said = [t.text for t in turns if t.role == "patient"]
            card = render.final_card(result.final, title="stored conclusion", patient=False, sources=said)
            if result.judge is not None:
                card += render.judge_card(result.judge, result.truth)
    return render.transcript_html(turns, facts), card


def _case(services: Services, case_id: str | None):
    try:
        return services.cases.get(case_id or "")
    except DxGraphError:
        return None


def build_benchmarks_tab(services: Services):
    """Lay out the Benchmarks tab and wire its events (call inside ``gr.Blocks``).

    Returns:
        ``(refresh, outputs)`` for the app to fill the run list when a page loads.
    """
    gr.Markdown("Benchmark runs stored by `dxgraph bench run` (SQLite or PostgreSQL). Pick a run to see "
                "its metrics; pick a sample to read its transcript.")
    # Which store this page reads: runs made with `bench run --db URL` appear only with `dxgraph ui --db URL`.
    gr.Markdown(f"Store: `{services.store_label}` (another store: `dxgraph ui --db URL`)", elem_id="bench-store")
    with gr.Row():
        refresh = gr.Button("Refresh", size="sm", scale=0, elem_id="bench-refresh")
        run = gr.Dropdown([], label="Run", scale=3, elem_id="bench-run")
    runs = gr.Dataframe(headers=_RUN_COLUMNS, interactive=False, label="Runs", max_height=220, elem_id="bench-runs")
    summary = gr.HTML(elem_id="bench-summary")
    with gr.Column(visible=False, elem_id="bench-details") as details:
        overall = gr.Dataframe(interactive=False, label="Overall (value [95% CI])", elem_id="bench-overall")
        by_temp = gr.Dataframe(interactive=False, label="By temperament")
        by_strat = gr.Dataframe(interactive=False, label="By strategy")
        with gr.Row():
            plot_temp = gr.BarPlot(x="temperament", y="top1_accuracy", title="Top-1 accuracy by temperament",
                                   y_lim=[0, 1], height=260)
            plot_strat = gr.BarPlot(x="strategy", y="top1_accuracy", title="Top-1 accuracy by strategy",
                                    y_lim=[0, 1], height=260)
        samples = gr.Dataframe(interactive=False, label="Samples", max_height=260, elem_id="bench-samples")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                key = gr.Dropdown([], label="Sample", elem_id="bench-sample")
                gr.Markdown("**Transcript** (patient on the right; highlighted: turns that disclosed a fact)")
                transcript = gr.HTML(render.transcript_html([]), elem_id="bench-transcript")
            with gr.Column(scale=2):
                conclusion = gr.HTML(elem_id="bench-conclusion")

    def on_refresh():
        frame = list_runs(services)
        ids = list(frame["run"]) if len(frame) else []
        return frame, gr.update(choices=ids, value=ids[0] if ids else None)

    def on_run(run_id):
        return run_view(services, run_id)

    def on_sample(run_id, k):
        return sample_view(services, run_id, k)

    view_outputs = [summary, overall, by_temp, by_strat, plot_temp, plot_strat, samples, key, details]
    refresh.click(on_refresh, None, [runs, run])
    run.change(on_run, run, view_outputs)
    key.change(on_sample, [run, key], [transcript, conclusion])
    return on_refresh, [runs, run]
