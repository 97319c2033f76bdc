"""Reports of a benchmark run: a JSON document, a self-contained HTML page, run comparisons.

The JSON is the contract (``run_id``, ``status``, ``samples_total``, ``samples_done``,
``samples_failed``, ``errors`` per sample and ``error_kinds`` grouped by type, ``metrics`` with
every value as ``{value, ci_low, ci_high, n}``); the HTML is drawn from it, with plots
embedded as base64 PNG so one file can be mailed or archived. Every report says whether its cases are synthetic: numbers on synthetic vignettes
are not clinical evidence.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path
from typing import Any

from dxgraph.bench.fidelity import fidelity_html, patient_fidelity
from dxgraph.bench.metrics import Outcome, compute_metrics, difference, failed_outcome, outcome_from_result
from dxgraph.bench.record import SampleResult
from dxgraph.bench.rejudge import unjudged
from dxgraph.bench.report_samples import samples_html
from dxgraph.errors import InputError
from dxgraph.store import SampleRow, Store

__all__ = ["METRIC_LABELS", "shown_metrics", "manifest_lines", "protocol_line", "overlap_note", "load_outcomes", "error_kinds", "format_error_kind", "build_report", "compare_runs", "render_html",
           "write_html"]

_KIND = re.compile(r"[A-Za-z_][\w.]*(?=:|\s\(|$)")  # the runner's "Type: message (file:line)"


def _run_or_error(store: Store, run_id: str):
    run = store.get_run(run_id)
    if run is None:
        known = ", ".join(r.id for r in store.list_runs()[:10]) or "none"
        raise InputError(f"no run {run_id!r} in the store {store.url!r} (runs: {known})")
    return run


def load_outcomes(store: Store, run_id: str, judge: str | None = None
                  ) -> tuple[list[Outcome], list[SampleRow], list[SampleRow]]:
    """Every assigned sample as an outcome (errored ones as ``failed``), plus the raw done
    and errored rows; failures count as wrong in the all-assigned accuracy."""
    done = store.samples(run_id, "done")
    failed = store.samples(run_id, "error")
    outcomes = [outcome_from_result(r.key, r.case_id, r.temperament, r.strategy, r.doctor, r.result_json, judge)
                for r in done]
    outcomes += [failed_outcome(r.key, r.case_id, r.temperament, r.strategy, r.doctor) for r in failed]
    return outcomes, done, failed


def error_kinds(failed: list[SampleRow]) -> list[dict[str, Any]]:
    """Failed samples grouped by error type, most frequent first.

    The runner stores each error as ``Type: message (file:line)``; the type is the kind. Each
    group keeps its first stored message and sample as the example, and how many different
    messages it holds, so one line per kind is enough to triage a run of hundreds of failures.
    """
    groups: dict[str, dict[str, Any]] = {}
    messages: dict[str, set[str]] = {}
    for row in failed:
        text = (row.error or "").strip().split("\n", 1)[0] or "unknown error"
        match = _KIND.match(text)
        kind = match.group(0) if match else "error"
        if kind not in groups:
            groups[kind] = {"kind": kind, "count": 0, "example": text, "first_key": row.key,
                            "first_sample": f"{row.case_id}/{row.temperament}/{row.strategy}"}
            messages[kind] = set()
        groups[kind]["count"] += 1
        messages[kind].add(text)
    for kind, group in groups.items():
        group["distinct_messages"] = len(messages[kind])
    return sorted(groups.values(), key=lambda g: -g["count"])


def format_error_kind(group: dict[str, Any]) -> str:
    """One line: ``40 ModelError: connection refused ... (first: sample acne-03/neutral/dialogue)``."""
    others = group["distinct_messages"] - 1
    more = f"; {others} other message{'s' if others > 1 else ''} of this kind" if others else ""
    return f"{group['count']} {group['example']} (first: sample {group['first_sample']}{more})"


def _synthetic(rows: list[SampleRow]) -> bool | str | None:
    flags = {SampleResult.from_json(r.result_json).synthetic for r in rows}
    if not flags:
        return None
    return flags.pop() if len(flags) == 1 else "mixed"


def _manifest(run, stored: dict[str, Any], reps: int, seed: int) -> dict[str, Any]:
    """The stored manifest with the end time and this report's bootstrap settings.

    Runs stored before manifests existed get what the run row still knows.
    """
    manifest = dict(stored.get("manifest") or {"started_at": run.created_at.isoformat() if run.created_at else None})
    finished = run.status in ("complete", "partial", "interrupted")
    manifest["ended_at"] = run.updated_at.isoformat() if finished and run.updated_at else None
    manifest["status"] = run.status
    manifest.setdefault("seeds", {})
    manifest["seeds"] = {**manifest["seeds"], "bootstrap": seed}
    manifest["bootstrap_reps"] = reps
    return manifest


def manifest_lines(manifest: dict[str, Any]) -> list[str]:
    """``key: value`` lines of a manifest, nested values as compact JSON."""
    return [f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in manifest.items()]


def build_report(store: Store, run_id: str, *, reps: int = 1000, seed: int = 0,
                 judge: str | None = None) -> dict[str, Any]:
    """The run's report as a JSON-ready dict; ``judge`` picks a judge added by ``bench judge``."""
    run = _run_or_error(store, run_id)
    stored = json.loads(run.config_json or "{}")
    grid = stored.get("grid") or {}
    if judge not in (None, "run"):
        from dxgraph.bench.rejudge import judge_names

        if judge not in (names := judge_names(store, run_id)):
            raise InputError(f"run {run_id!r} has no judge {judge!r} (judges: {', '.join(names)})")
    outcomes, done, failed = load_outcomes(store, run_id, judge)
    metrics = compute_metrics(outcomes, reps=reps, seed=seed, strategies=grid.get("strategies"),
                              temperaments=grid.get("temperaments"))
    tokens_in = tokens_out = 0
    seconds = 0.0
    for r in done:
        tok = SampleResult.from_json(r.result_json).tokens
        tokens_in += tok.input
        tokens_out += tok.output
        seconds += r.seconds
    return {
        "run_id": run.id,
        "status": run.status,
        "samples_total": run.samples_total,
        "samples_done": len(done),
        "samples_failed": len(failed),
        "synthetic": _synthetic(done),
        # Cases the rule doctor learned from (run with --allow-train-overlap): not a result.
        "evaluated_on_training_cases": len(stored.get("train_overlap") or []),
        "manifest": _manifest(run, stored, reps, seed),
        "judge": judge or "run",
        "protocol": (stored.get("config") or {}).get("protocol", "dxgraph"),
        "unjudged": sum(1 for r in done if unjudged(SampleResult.from_json(r.result_json))) if judge in (None, "run") else 0,
        "config": stored.get("config"),
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out, "sample_seconds": round(seconds, 3)},
        "errors": [{"key": r.key, "error": r.error, "attempts": r.attempts} for r in failed],
        "error_kinds": error_kinds(failed),
        "bootstrap": metrics.pop("bootstrap"),
        "confusion": metrics.pop("confusion"),
        "metrics": metrics,
        "patient": patient_fidelity(done, reps=reps, seed=seed),
    }


def compare_runs(store: Store, run_a: str, run_b: str, *, reps: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metric deltas ``A - B``, paired on the sample keys both runs finished when they share
    any (same cases, temperaments, strategies, doctors), else paired on shared cases."""
    for rid in (run_a, run_b):
        _run_or_error(store, rid)
    out_a = [o for o in load_outcomes(store, run_a)[0] if not o.failed]
    out_b = [o for o in load_outcomes(store, run_b)[0] if not o.failed]
    shared = {o.key for o in out_a} & {o.key for o in out_b}
    if shared:
        side_a = [o for o in out_a if o.key in shared]
        side_b = [o for o in out_b if o.key in shared]
        pairing = "sample keys"
    else:
        side_a, side_b = out_a, out_b
        cases = {o.case_id for o in out_a} & {o.case_id for o in out_b}
        pairing = "cases" if cases else "none"
    deltas = difference(side_a, side_b, reps=reps, seed=seed)
    a_vals = {k: v["value"] for k, v in (compute_metrics(side_a, reps=0)["overall"] or {}).items()}
    b_vals = {k: v["value"] for k, v in (compute_metrics(side_b, reps=0)["overall"] or {}).items()}
    return {
        "a": run_a, "b": run_b, "paired_on": pairing, "shared_samples": len(shared),
        "samples_a": len(side_a), "samples_b": len(side_b),
        "metrics": {name: {"a": a_vals.get(name), "b": b_vals.get(name), "delta": d}
                    for name, d in deltas.items()},
    }


# ------------------------------------------------------------------------------ HTML
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _bars(groups: dict[str, dict[str, Any]], metric: str, title: str) -> str | None:
    import matplotlib.pyplot as plt

    names = [g for g, m in groups.items() if (m.get(metric) or {}).get("value") is not None]
    if not names:
        return None
    vals = [groups[g][metric]["value"] for g in names]
    lo = [v - groups[g][metric]["ci_low"] for g, v in zip(names, vals)]
    hi = [groups[g][metric]["ci_high"] - v for g, v in zip(names, vals)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 1), 3.2))
    ax.bar(range(len(names)), vals, yerr=[lo, hi], capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_title(title)
    ax.set_ylabel(metric.replace("_", " "))
    return _png(fig)


def _confusion_png(conf: dict[str, Any]) -> str | None:
    import matplotlib.pyplot as plt
    import numpy as np

    if not conf.get("labels"):
        return None
    m = np.array(conf["matrix"], dtype=float)
    size = max(4.0, 0.32 * len(conf["columns"]) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(m, cmap="Blues")
    for (i, j), count in np.ndenumerate(m):  # counts in the cells, not only shades
        if count:
            ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=6,
                    color="white" if count > m.max() / 2 else "black")
    ax.set_xticks(range(len(conf["columns"])), conf["columns"], rotation=90, fontsize=7)
    ax.set_yticks(range(len(conf["labels"])), conf["labels"], fontsize=7)
    ax.set_xlabel("answer")
    ax.set_ylabel("truth")
    ax.set_title("Confusion matrix")
    return _png(fig)


def _fmt(v: dict[str, Any] | None) -> str:
    if not v or v.get("value") is None:
        return "–"
    return f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}] (n={v['n']})"


def _table(groups: dict[str, dict[str, Any]], metrics: list[str], first: str) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    rows = "".join(
        f"<tr><td>{html.escape(g)}</td>" + "".join(f"<td>{_fmt(block.get(m))}</td>" for m in metrics) + "</tr>"
        for g, block in groups.items())
    return f"<table><tr><th>{html.escape(first)}</th>{head}</tr>{rows}</table>"


# What a terminal or the demo shows of a run, in words a reader parses at a glance
# (the JSON and the HTML report keep the metric keys).
METRIC_LABELS = {"top1_accuracy": "top-1", "top1_accuracy_all_assigned": "top-1 all assigned",
                 "top3_accuracy": "top-3", "macro_f1": "macro F1", "f1_3mdbench": "F1 3MDBench",
                 "failure_rate": "failure rate", "other_rate": "other", "unparseable_rate": "unparseable",
                 "abstention_rate": "abstained", "mean_turns": "turns", "facts_elicited": "facts elicited"}


def shown_metrics(report: dict[str, Any]) -> list[str]:
    """The metrics the CLI and the demo show: the strict ones, and under ``--protocol 3mdbench``
    3MDBench's own (weighted F1 without "none", failure share) beside them."""
    metrics = ["top1_accuracy", "top1_accuracy_all_assigned", "top3_accuracy", "macro_f1", "other_rate",
               "unparseable_rate", "abstention_rate", "mean_turns", "facts_elicited"]
    if report.get("protocol") == "3mdbench":
        metrics[4:4] = ["f1_3mdbench", "failure_rate"]
    return metrics


def protocol_line(report: dict[str, Any]) -> str:
    """The protocol a run followed, named first in every report."""
    if report.get("protocol") == "3mdbench":
        return ("protocol: 3mdbench — every case of the set once, with its own personality; strategies compared; "
                "f1_3mdbench is 3MDBench's metric (weighted F1, 'none' answers dropped) beside failure_rate")
    return "protocol: dxgraph — every test case under every temperament (paired); top-1 is the headline"


def overlap_note(report: dict[str, Any]) -> str:
    """The warning every report of a run on the doctor's own knowledge base carries ("" if none)."""
    n = report.get("evaluated_on_training_cases") or 0
    if not n:
        return ""
    return (f"EVALUATED ON TRAINING CASES: {n} evaluated case(s) are in the rule doctor's knowledge base "
            "(run with --allow-train-overlap); its figures here are not a result.")


def _overlap_banner(report: dict[str, Any]) -> str:
    note = overlap_note(report)
    return f'<p class="banner" style="background:#f8d7da">{html.escape(note)}</p>' if note else ""


def _label_table(by_label: dict[str, dict[str, Any]]) -> str:
    """Per-label rows; a label nobody had (only predicted) says "no support", not F1 0."""
    rows = ""
    for lab, block in by_label.items():
        if not block.get("support"):
            cells = f'<td colspan="3">no support (predicted {block.get("predicted", 0)} times)</td>'
        else:
            cells = "".join(f"<td>{_fmt(block.get(m))}</td>" for m in ("top1_accuracy", "f1", "abstention_rate"))
        rows += f"<tr><td>{html.escape(lab)}</td><td>{block.get('support', 0)}</td>{cells}</tr>"
    return ("<table><tr><th>label</th><th>support</th><th>top1_accuracy</th><th>f1</th><th>abstention_rate</th>"
            f"</tr>{rows}</table>")


def render_html(report: dict[str, Any], samples: list[dict[str, Any]] | None = None) -> str:
    """A self-contained page (no external assets) drawn from ``build_report``'s dict."""
    import matplotlib

    matplotlib.use("Agg")
    m = report["metrics"]
    overall = m.get("overall") or {}
    core = ["top1_accuracy", "top1_accuracy_all_assigned", "top3_accuracy", "macro_f1", "weighted_f1",
            "f1_3mdbench", "failure_rate", "other_rate", "unparseable_rate", "abstention_rate",
            "mean_turns", "facts_elicited"]
    synthetic = report.get("synthetic")
    if synthetic is True:
        banner = "All cases are synthetic vignettes written for this project: these figures are not clinical evidence."
    elif synthetic == "mixed":
        banner = "Cases are a mix of synthetic and imported cases."
    elif synthetic is False:
        banner = "Cases are imported (not synthetic)."
    else:
        banner = "No finished samples: whether the cases are synthetic is unknown."
    plots = [
        _confusion_png(report.get("confusion") or {}),
        _bars(m.get("by_temperament") or {}, "top1_accuracy", "Top-1 accuracy by temperament (95% CI)"),
        _bars(m.get("by_strategy") or {}, "top1_accuracy", "Top-1 accuracy by strategy (95% CI)"),
        _bars({k.split(".", 1)[1]: {"score": v} for k, v in overall.items() if k.startswith("rubric.")},
              "score", "Rubric means (95% CI)"),
    ]
    imgs = "".join(f'<img alt="plot" src="{p}">' for p in plots if p)
    paired = ""
    for by, pairs in (m.get("paired") or {}).items():
        if pairs:
            paired += f"<h3>Paired differences by {html.escape(by)}</h3>" + _table(
                pairs, ["top1_accuracy", "macro_f1", "mean_turns", "facts_elicited"], "pair")
    errors = "".join(f"<tr><td>{html.escape(e['key'])}</td><td>{html.escape(str(e['error']))}</td></tr>"
                     for e in report.get("errors", [])[:50])
    kinds = "".join(f"<li>{html.escape(format_error_kind(g))}</li>" for g in report.get("error_kinds", []))
    title = html.escape(f"dxgraph benchmark {report['run_id']}")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}.banner{{background:#fff3cd;padding:.6em;border:1px solid #e0c36b}}
img{{max-width:100%;margin:.5em}}</style></head><body>
<h1>{title}</h1>
<p><b>{html.escape(protocol_line(report))}</b></p>
<p class="banner">{html.escape(banner)}</p>{_overlap_banner(report)}
<p>Status <b>{html.escape(str(report['status']))}</b>: {report['samples_done']} of {report['samples_total']} samples done,
{report['samples_failed']} failed. Intervals: 95% bootstrap over cases ({report['bootstrap']['reps']} replicates).
Abstained, unparseable and "other" answers count as wrong; failed samples count as wrong in
top1_accuracy_all_assigned only. Macro-F1 averages over labels with support in the truth.</p>
<h2>Run manifest</h2><table>{"".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
    for k, v in (line.split(": ", 1) for line in manifest_lines(report.get("manifest") or {})))}</table>
<h2>Overall</h2>{_table({"all": overall}, core, "")}
<h2>By temperament</h2>{_table(m.get("by_temperament") or {}, core, "temperament")}
<h2>By strategy</h2>{_table(m.get("by_strategy") or {}, core, "strategy")}
<h2>By doctor</h2>{_table(m.get("by_doctor") or {}, core, "doctor")}
<h2>Plots</h2>{imgs}
{paired}
{fidelity_html(report.get("patient"))}
<h2>By label</h2>{_label_table(m.get("by_label") or {})}
{samples_html(samples or [])}
<h2>Errors</h2><ul>{kinds}</ul><table><tr><th>sample</th><th>error</th></tr>{errors}</table>
</body></html>"""


def check_writable(path: str | Path, flag: str = "path") -> Path:
    """Refuse, before any work, a report path that is a folder or cannot be written.

    The folders above it are created; the file itself is opened for append and, when it
    did not exist, removed again, so the check is the real one (``os.access`` says yes to
    root on ``/proc``).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {str(path)!r} is a folder; give a file name such as {str(path / 'report.html')!r}")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise InputError(f"{flag} {str(path)!r} cannot be written: {exc.strerror or exc}") from None
    return path


def write_html(report: dict[str, Any], path: str | Path, samples: list[dict[str, Any]] | None = None) -> Path:
    """Write the page; ``samples`` (``report_samples.sample_rows``) adds the consultation list."""
    path = check_writable(path, "--html")
    try:
        path.write_text(render_html(report, samples), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--html {str(path)!r} cannot be written: {exc.strerror or exc}") from None
    return path
