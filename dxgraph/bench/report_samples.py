"""The HTML report's list of consultations, filterable by correctness, temperament and label.

Kept apart from ``report.py``: it reads the transcripts, which only the HTML shows.
"""

from __future__ import annotations

import html
from typing import Any

from dxgraph.bench.outcome import Outcome
from dxgraph.store import Store

__all__ = ["sample_rows", "samples_html"]


def sample_rows(store: Store, run_id: str, outcomes: list[Outcome], *, with_turns: bool = True) -> list[dict[str, Any]]:
    """One row per assigned sample: condition, truth, answer kind, verdict, transcript."""
    rows = []
    for o in sorted(outcomes, key=lambda o: o.key):
        turns = [f"{t.role.upper()}: {t.text}" for t in store.turns(run_id, o.key)] if with_turns else []
        rows.append({"key": o.key, "case_id": o.case_id, "temperament": o.temperament, "strategy": o.strategy,
                     "doctor": o.doctor, "truth": o.truth, "predicted": o.predicted, "answer": o.answer,
                     "correct": "failed" if o.failed else ("correct" if o.correct else "incorrect"),
                     "transcript": turns})
    return rows


def _select(name: str, values: list[str]) -> str:
    opts = "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)
    return f'<label>{name} <select data-filter="{name}"><option value="">all</option>{opts}</select></label> '


def samples_html(rows: list[dict[str, Any]]) -> str:
    """A table with three filters (plain inline JS, no external assets)."""
    if not rows:
        return ""
    filters = (_select("correct", ["correct", "incorrect", "failed"])
               + _select("temperament", sorted({r["temperament"] for r in rows}))
               + _select("label", sorted({r["truth"] for r in rows if r["truth"]})))
    body = ""
    for r in rows:
        talk = html.escape("\n".join(r["transcript"])) or "(no transcript stored)"
        body += (f'<tr data-correct="{r["correct"]}" data-temperament="{html.escape(r["temperament"])}" '
                 f'data-label="{html.escape(r["truth"])}"><td>{html.escape(r["key"])}</td>'
                 f'<td>{html.escape(r["truth"])}</td><td>{html.escape(str(r["predicted"] or "–"))} ({r["answer"]})</td>'
                 f'<td>{r["correct"]}</td><td><details><summary>transcript</summary><pre>{talk}</pre></details></td></tr>')
    script = """<script>
document.querySelectorAll('select[data-filter]').forEach(s => s.addEventListener('change', () => {
  const want = {}; document.querySelectorAll('select[data-filter]').forEach(x => want[x.dataset.filter] = x.value);
  document.querySelectorAll('#samples tr[data-correct]').forEach(row => {
    row.style.display = Object.entries(want).every(([k, v]) => !v || row.dataset[k] === v) ? '' : 'none';
  });
}));
</script>"""
    return (f"<h2>Consultations</h2><p>{filters}</p><table id=\"samples\"><tr><th>sample</th><th>truth</th>"
            f"<th>answer</th><th>verdict</th><th>transcript</th></tr>{body}</table>{script}")
