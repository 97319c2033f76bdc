"""Plain functions that turn dxgraph results into what the page shows (HTML, chat messages).

Everything a result carries is escaped before it reaches the page: tool errors, model text
and file names are data, not markup.
"""

from __future__ import annotations

from html import escape
from typing import Any

from dxgraph.types import Diagnosis, FinalDiagnosis, IndicatorResult, Turn

__all__ = [
    "NOTICE",
    "notice_html",
    "message_html",
    "placeholder_html",
    "fmt_value",
    "indicator_status",
    "evidence_table",
    "diagnosis_card",
    "final_card",
    "judge_card",
    "overlay_items",
    "turn_message",
    "pending_tool_message",
]

NOTICE = ("Research demo, not for clinical use. dxgraph is research software: it does not give "
          "medical advice, and its answers must not be used to diagnose or treat anyone. "
          "Cases in the simulator are synthetic.")


def notice_html(short: bool = False) -> str:
    """The research-demo notice; ``short`` for cards under the page's full notice."""
    if short:
        return '<div class="dx-notice dx-notice-short" role="note">Research demo — not for clinical use.</div>'
    return f'<div class="dx-notice" role="note"><b>Research demo — not for clinical use.</b> {escape(NOTICE.split(". ", 1)[1])}</div>'


def placeholder_html(text: str) -> str:
    """Quiet text where a result will appear."""
    return f'<div class="dx-placeholder">{escape(text, quote=False)}</div>'


def message_html(text: str, kind: str = "error") -> str:
    """A message box for the page (``error``, ``info`` or ``ok``); empty text clears it."""
    if not text:
        return ""
    return f'<div class="dx-msg dx-msg-{kind}" role="{"alert" if kind == "error" else "status"}">{escape(text, quote=False)}</div>'


def fmt_value(value: Any, unit: str | None = None) -> str:
    """A readable value: three significant digits for floats, the unit after it."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    else:
        text = str(value)
    if unit and unit not in ("ratio", "1"):
        text += f" {unit}"
    return text


def indicator_status(ind: IndicatorResult) -> str:
    """``sign present``, ``sign absent``, ``uncertain`` or ``unavailable`` (a rule states the abnormal sign)."""
    return ind.finding


def evidence_table(dx: Diagnosis) -> str:
    """One row per indicator: value, unit, rule, verdict, the tools that produced it."""
    rows = []
    for ind in dx.indicators:
        status = indicator_status(ind)
        cls = {"sign present": "present", "sign absent": "absent"}.get(status, "na")
        chain = ", ".join(f"{c.tool} v{c.version}{' (cached)' if c.cached else ''}" for c in ind.calls)
        last = ind.calls[-1].tool if ind.calls else "no tool ran"
        tools = f"{last}{f' (+{len(ind.calls) - 1} more)' if len(ind.calls) > 1 else ''}"
        detail = ind.error if ind.status != "ok" else (ind.rationale or "")
        unit = "" if ind.unit in (None, "ratio", "1") else ind.unit
        rows.append(
            f'<tr class="dx-{cls}"><td><b>{escape(ind.id)}</b><div class="dx-sub">{escape(ind.description)}</div></td>'
            f'<td class="dx-num">{escape(fmt_value(ind.value))}</td><td>{escape(unit or ind.unit or "")}</td>'
            f"<td><code>{escape(ind.rule or '')}</code></td>"
            f'<td><span class="dx-badge dx-{cls}">{escape(status)}</span>'
            f'{f"<div class=dx-sub>{escape(detail[:300])}</div>" if detail else ""}</td>'
            f'<td class="dx-sub" title="{escape(chain)}">{escape(tools)}<br>{ind.seconds:.2f} s · weight {ind.weight:g}</td></tr>'
        )
    return ('<div class="dx-scroll"><table class="dx-evidence"><colgroup><col style="width:24%"><col style="width:10%">'
            '<col style="width:9%"><col style="width:15%"><col style="width:24%"><col style="width:18%"></colgroup>'
            "<thead><tr><th>indicator</th><th>value</th><th>unit</th>"
            "<th>abnormal if</th><th>finding</th><th>tools · time</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def diagnosis_card(dx: Diagnosis) -> str:
    """A workflow's outcome with the evidence it rests on, timings and the trace id."""
    prob = dx.probability if dx.probability is not None else dx.score
    score = ""
    if prob is not None:
        score = f"score {prob:.2f}"
        if dx.threshold is not None:
            score += f" (threshold {dx.threshold:g})"
    available = len(dx.available)
    parts = [
        '<div class="dx-card">',
        f'<div class="dx-kicker">workflow {escape(dx.workflow)} v{escape(dx.workflow_version)}</div>',
        f'<div class="dx-outcome">{escape(dx.outcome)}</div>',
        f'<div class="dx-meta">{escape(score)}{" · " if score else ""}{available} of {len(dx.indicators)} '
        f"indicators available · {dx.seconds:.2f} s"
        f'{f" · trace <code>{escape(dx.trace_id)}</code>" if dx.trace_id else ""}</div>',
    ]
    if dx.decision:
        parts.append(f'<div class="dx-sub">decision: {escape(dx.decision)}</div>')
    if dx.note:
        parts.append(f'<div class="dx-note">{escape(dx.note)}</div>')
    parts.append(evidence_table(dx))
    if dx.narrative:
        parts.append(f'<p class="dx-narrative">{escape(dx.narrative)}</p>')
    parts.append(notice_html(short=True))
    parts.append("</div>")
    return "".join(parts)


def final_card(final: FinalDiagnosis, dx: Diagnosis | None = None, *, title: str = "Doctor's conclusion") -> str:
    """The consultation's diagnosis card: label with confidence, differential, basis, evidence."""
    label = final.label or "no diagnosis (the doctor abstained)"
    diff = ", ".join(escape(d) for d in final.differential) or "–"
    parts = [
        '<div class="dx-card">',
        f'<div class="dx-kicker">{escape(title)}</div>',
        f'<div class="dx-outcome">{escape(label)}</div>',
        f'<div class="dx-meta">confidence {final.confidence:.0%}</div>',
        f'<div class="dx-conf"><span style="width:{final.confidence * 100:.0f}%"></span></div>',
        f"<p><b>Differential:</b> {diff}</p>",
    ]
    if final.basis:
        parts.append(f'<p class="dx-sub"><b>Basis:</b> {escape(final.basis)}</p>')
    if dx is not None:
        parts.append(f'<div class="dx-kicker">evidence from workflow {escape(dx.workflow)}: {escape(dx.outcome)}</div>')
        parts.append(evidence_table(dx))
    parts.append(notice_html(short=True))
    parts.append("</div>")
    return "".join(parts)


def judge_card(judge, truth: str | None = None) -> str:
    """The judge's verdict and rubric (a ``JudgeResult``)."""
    verdict = "correct" if judge.correct else ("abstained" if judge.predicted_label is None else "incorrect")
    cls = "pass" if judge.correct else "fail"
    rows = []
    for item, score in judge.rubric.items():
        shown = "–" if score is None else f"{score:g}"
        reason = judge.rubric_reasons.get(item, "")
        rows.append(f"<tr><td>{escape(item.replace('_', ' '))}</td><td class='dx-num'>{shown}</td>"
                    f"<td class='dx-sub'>{escape(reason)}</td></tr>")
    true_label = truth or judge.true_label or "–"
    return (
        '<div class="dx-card">'
        f'<div class="dx-kicker">judge · {escape(judge.judge)}</div>'
        f'<div class="dx-outcome"><span class="dx-badge dx-{cls}">{verdict}</span></div>'
        f'<p>Answer <b>{escape(judge.predicted_label or "none")}</b> · true diagnosis '
        f'<b>{escape(true_label)}</b> · top-3 {"yes" if judge.top3_correct else "no"} · matched by {escape(judge.match)}</p>'
        '<table class="dx-evidence"><thead><tr><th>rubric item</th><th>score</th><th>reason</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div>'
    )


def overlay_items(dx: Diagnosis | None) -> list[tuple[str, str]]:
    """``(png path, caption)`` for every segmentation overlay of a diagnosis."""
    if dx is None:
        return []
    items = []
    for ind in dx.indicators:
        for name, path in ind.artifacts.items():
            if str(path).lower().endswith((".png", ".jpg", ".jpeg")):
                items.append((str(path), f"{ind.id}: {name} ({fmt_value(ind.value, ind.unit)})"))
    return items


def turn_message(turn: Turn | dict) -> dict:
    """A transcript turn as a chat message: the patient on the right, the doctor on the left,
    tool evidence as a collapsed step under the doctor."""
    t = turn if isinstance(turn, Turn) else Turn.model_validate(turn)
    if t.role == "patient":
        return {"role": "user", "content": t.text}
    if t.role == "tool":
        return {
            "role": "assistant",
            "content": t.text,
            "metadata": {"title": f"Tool step: {t.tool or 'tool'}", "status": "done",
                         "duration": round(t.latency_ms / 1000, 2)},
        }
    if t.role == "system":
        return {"role": "assistant", "content": t.text, "metadata": {"title": "note", "status": "done"}}
    return {"role": "assistant", "content": t.text}


def pending_tool_message(tool: str, log: str = "") -> dict:
    """A tool step that is still running (a spinner next to its title)."""
    return {"role": "assistant", "content": log or "running…",
            "metadata": {"title": f"Tool step: {tool}", "status": "pending", "log": log}}
