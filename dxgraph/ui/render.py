"""Plain functions that turn dxgraph results into what the page shows (HTML, chat messages).

Everything a result carries is escaped before it reaches the page: tool errors, model text
and file names are data, not markup.
"""

from __future__ import annotations

import re
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
    "public_text",
    "tidy_quotes",
    "conclusion_text",
    "strip_errors",
    "workflow_step_text",
    "transcript_html",
    "reasons_in",
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


# An absolute file path (two or more components) not inside a URL: "/srv/venv/lib/x/retina.jpg".
_PATH = re.compile(r"(?<![\w.:/~-])(?:/[\w.@+=-]+){2,}/?")


def public_text(text: str | None) -> str:
    """Text for a visitor: absolute file paths of the server (its install, home, temp folders)
    cut to the file's name, so a message never shows where the server keeps things."""
    if not text:
        return ""
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def message_html(text: str, kind: str = "error") -> str:
    """A message box for the page (``error``, ``info`` or ``ok``); empty text clears it."""
    if not text:
        return ""
    return (f'<div class="dx-msg dx-msg-{kind}" role="{"alert" if kind == "error" else "status"}">'
            f"{escape(public_text(text), quote=False)}</div>")


_QUOTED = re.compile(r"""(["'])(.+?)\1(?=[;.,)]|\s|$)""")


def tidy_quotes(text: str, sources: list[str] | tuple[str, ...] = ()) -> str:
    """Quotes of the patient's words that were cut mid-word end at the last whole word with
    an ellipsis: a quote that is a prefix of one of ``sources`` but stops inside a word."""
    if not text or not sources:
        return text or ""

    def fix(m: re.Match) -> str:
        quote, inner = m.group(1), m.group(2)
        for src in sources:
            end = src.find(inner) + len(inner) if inner in src else -1
            if 0 <= end < len(src):
                if src[end].isalnum() and inner[-1:].isalnum():
                    inner = inner[: inner.rfind(" ")] if " " in inner else inner
                return f"{quote}{inner.rstrip(' ,;:')}…{quote}"
        return m.group(0)

    return _QUOTED.sub(fix, text)


def strip_errors(text: str, errors: list[str] | set[str]) -> str:
    """Drop the repeated wording of tool errors from a text ("unavailable (no VLM configured: …)"
    becomes "unavailable"): the card's evidence table says each distinct reason once."""
    for err in sorted({e for e in errors if e}, key=len, reverse=True):
        text = text.replace(f" ({err})", "").replace(f"({err})", "").replace(err, "see the evidence table")
    return text


# "unavailable (reason)", the reason possibly holding one level of parentheses itself.
_UNAVAILABLE = re.compile(r"unavailable \(((?:[^()]|\([^()]*\))*)\)")


def reasons_in(texts: list[str]) -> set[str]:
    """The reasons tools gave for unavailable evidence, as they appear in transcript texts."""
    return {m.group(1) for t in texts for m in _UNAVAILABLE.finditer(t or "")}


def _errors(dx: Diagnosis | None) -> set[str]:
    return {ind.error for ind in dx.indicators if ind.status != "ok" and ind.error} if dx is not None else set()


def _evidence_line(dx: Diagnosis) -> str:
    """The workflow's own figures, named as what they are: an evidence score and its coverage."""
    bits = []
    if dx.score is not None:
        bits.append(f"evidence score {dx.score:.2f}" + (f" (threshold {dx.threshold:g})" if dx.threshold is not None else ""))
    if dx.coverage is not None:
        bits.append(f"coverage {dx.coverage:.0%} of the evidence weight")
    return " · ".join(bits)


def workflow_step_text(dx: Diagnosis) -> str:
    """The tool step a workflow adds to the consultation: outcome, evidence score and coverage,
    each measured indicator; the unavailable ones named once (their reason is in the card)."""
    lines = [f"Workflow {dx.workflow}: {dx.outcome}"]
    if _evidence_line(dx):
        lines.append(_evidence_line(dx))
    for ind in dx.indicators:
        if ind.status == "ok":
            lines.append(f"- {ind.id} = {fmt_value(ind.value, ind.unit)} ({ind.finding}; abnormal if {ind.rule})")
    missing = [ind.id for ind in dx.indicators if ind.status != "ok"]
    if missing:
        lines.append(f"- unavailable: {', '.join(missing)} (reason in the evidence table)")
    return public_text("\n".join(lines))


def conclusion_text(final: FinalDiagnosis, dx: Diagnosis | None = None, sources: list[str] | tuple[str, ...] = ()) -> str:
    """The doctor's conclusion as the patient reads it: the most likely diagnosis and what it
    rests on, no probability (a rule doctor's "confidence" after three turns is not one)."""
    if final.label is None:
        head = "I cannot reach a diagnosis remotely; please see a doctor in person."
    else:
        head = f"My conclusion: the most likely diagnosis is {final.label}."
    alt = [d for d in final.differential if d != final.label]
    tail = f" Other possibilities: {', '.join(alt)}." if alt else ""
    basis = tidy_quotes(strip_errors(final.basis, _errors(dx)), sources) if final.basis else ""
    return public_text(f"{head}{tail}" + (f" This rests on: {basis}" if basis else ""))


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


def _cut(text: str, n: int) -> str:
    """At most ``n`` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= n:
        return text
    head = text[:n]
    return (head[: head.rfind(" ")] if " " in head else head).rstrip(" ,;:") + "…"


def evidence_table(dx: Diagnosis, *, compact: bool = False) -> str:
    """One row per indicator: value, unit, rule, verdict, the tools that produced it; ``compact``
    for a narrow column (each indicator a block of labelled lines)."""
    rows = []
    said: set[str] = set()
    for ind in dx.indicators:
        status = indicator_status(ind)
        cls = {"sign present": "present", "sign absent": "absent"}.get(status, "na")
        chain = ", ".join(f"{c.tool} v{c.version}{' (cached)' if c.cached else ''}" for c in ind.calls)
        last = ind.calls[-1].tool if ind.calls else "no tool ran"
        tools = f"{last}{f' (+{len(ind.calls) - 1} more)' if len(ind.calls) > 1 else ''}"
        detail = public_text(ind.error if ind.status != "ok" else (ind.rationale or ""))
        if ind.status != "ok":  # one reason said once: later rows with the same reason point up
            detail, _ = ("as above" if detail in said else detail), said.add(detail)
        unit = "" if ind.unit in (None, "ratio", "1") else ind.unit
        rows.append(
            f'<tr class="dx-{cls}"><td><b>{escape(ind.id)}</b><div class="dx-sub">{escape(ind.description)}</div></td>'
            f'<td class="dx-num" data-label="value">{escape(fmt_value(ind.value))}</td>'
            f'<td data-label="unit">{escape(unit or ind.unit or "")}</td>'
            f"<td data-label=\"abnormal if\"><code>{escape(ind.rule or '')}</code></td>"
            f'<td data-label="finding"><span class="dx-badge dx-{cls}">{escape(status)}</span>'
            f'{f"<div class=dx-sub>{escape(_cut(detail, 300))}</div>" if detail else ""}</td>'
            f'<td class="dx-sub" data-label="tools" title="{escape(public_text(chain))}">{escape(tools)}<br>{ind.seconds:.2f} s · weight {ind.weight:g}</td></tr>'
        )
    return (f'<div class="dx-scroll"><table class="dx-evidence{" dx-compact" if compact else ""}"><colgroup><col style="width:24%"><col style="width:10%">'
            '<col style="width:9%"><col style="width:15%"><col style="width:24%"><col style="width:18%"></colgroup>'
            "<thead><tr><th>indicator</th><th>value</th><th>unit</th>"
            "<th>abnormal if</th><th>finding</th><th>tools · time</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def diagnosis_card(dx: Diagnosis, *, compact: bool = False) -> str:
    """A workflow's outcome with the evidence it rests on, timings and the trace id."""
    score = _evidence_line(dx)
    if dx.probability is not None:
        prob = f"probability {dx.probability:.2f}"
        if dx.score is None and dx.threshold is not None:
            prob += f" (threshold {dx.threshold:g})"
        score = prob + (f" · {score}" if score else "")
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
        parts.append(f'<div class="dx-sub">decision: {escape(public_text(dx.decision))}</div>')
    if dx.note:
        parts.append(f'<div class="dx-note">{escape(public_text(dx.note))}</div>')
    parts.append(evidence_table(dx, compact=compact))
    if dx.narrative:
        parts.append(f'<p class="dx-narrative">{escape(dx.narrative)}</p>')
    parts.append(notice_html(short=True))
    parts.append("</div>")
    return "".join(parts)


def final_card(final: FinalDiagnosis, dx: Diagnosis | None = None, *, title: str = "Doctor's conclusion",
               patient: bool = True, sources: list[str] | tuple[str, ...] = (), compact: bool = False) -> str:
    """The consultation's diagnosis card: the most likely diagnosis, differential, basis, evidence.

    ``patient`` (the Consult tab) shows no probability: a rule doctor's "confidence" after a
    few turns, or a workflow's evidence score, is not a probability to give a patient. The
    researcher's views (Simulate, Benchmarks) show the doctor's stated figure, named as such.
    ``sources`` are the patient's words, so quotes cut mid-word end at a whole word.
    """
    label = final.label or "no diagnosis (the doctor abstained)"
    diff = ", ".join(escape(d) for d in final.differential if d != final.label) or "–"
    parts = [
        '<div class="dx-card">',
        f'<div class="dx-kicker">{escape(title)}</div>',
        f'<div class="dx-sub">{"most likely diagnosis" if final.label else ""}</div>' if patient else "",
        f'<div class="dx-outcome">{escape(label)}</div>',
    ]
    if not patient:
        parts.append(f'<div class="dx-meta">doctor\'s stated confidence {final.confidence:.0%} (its own figure, not calibrated)</div>')
    parts.append(f"<p><b>Other possibilities:</b> {diff}</p>")
    if final.basis:
        basis = tidy_quotes(strip_errors(final.basis, _errors(dx) | reasons_in([final.basis])), sources)
        parts.append(f'<p class="dx-sub"><b>Basis:</b> {escape(public_text(basis))}</p>')
    if dx is not None:
        line = _evidence_line(dx)
        parts.append(f'<div class="dx-kicker">evidence from workflow {escape(dx.workflow)}: {escape(dx.outcome)}</div>')
        if line:
            parts.append(f'<div class="dx-meta">{escape(line)}</div>')
        parts.append(evidence_table(dx, compact=compact))
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
        if score is None and not reason:
            reason = ("not scored by the rule judge" if judge.judge in ("rules", "rule")
                      else f"not scored by the judge {judge.judge}")
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


def _top_level_items(text: str) -> list[str]:
    """``a; b (c; d); e`` as ``[a, b (c; d), e]``: split at semicolons outside parentheses."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == ";" and depth <= 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [x for x in items if x]


def transcript_html(turns: list[Turn] | list[dict], facts: dict[str, str] | None = None, *,
                    sources_for_quotes: bool = True, running: bool = False) -> str:
    """The whole transcript as one page block (no scrolling window): the patient on the
    right, the doctor on the left, tool steps between; a patient turn that disclosed facts
    is highlighted and names them."""
    facts = facts or {}
    ts = [t if isinstance(t, Turn) else Turn.model_validate(t) for t in turns]
    said = [t.text for t in ts if t.role == "patient"] if sources_for_quotes else []
    rows = []
    told: set[str] = set()

    def once(m: re.Match) -> str:  # each tool's reason for missing evidence said once
        first = m.group(1) not in told
        told.add(m.group(1))
        return m.group(0) if first else "unavailable (as above)"

    for t in ts:
        text = public_text(_UNAVAILABLE.sub(once, t.text))
        if t.role == "tool":
            text = "\n".join(_top_level_items(text))
        if t.role == "patient":
            shown = [f"{f} ({facts[f]})" if f in facts else f for f in t.revealed_facts]
            cls = "dx-turn dx-patient" + (" dx-disclosed" if shown else "")
            tag = (f'<div class="dx-facts">disclosed: {"; ".join(escape(x) for x in shown)}</div>' if shown else "")
            body = f"<mark>{escape(text)}</mark>" if shown else escape(text)
            rows.append(f'<div class="{cls}" data-role="patient"><div class="dx-who">patient</div>{body}{tag}</div>')
        elif t.role == "tool":
            rows.append(f'<div class="dx-turn dx-tool" data-role="tool"><div class="dx-who">tool step · '
                        f'{escape(t.tool or "tool")}</div>{escape(text)}</div>')
        elif t.role == "doctor":
            body = tidy_quotes(text, said) if t.end else text
            rows.append(f'<div class="dx-turn dx-doctor{" dx-end" if t.end else ""}" data-role="doctor">'
                        f'<div class="dx-who">doctor{" · conclusion" if t.end else ""}</div>{escape(body)}</div>')
        else:
            rows.append(f'<div class="dx-turn dx-tool" data-role="system"><div class="dx-who">note</div>{escape(text)}</div>')
    if running:
        rows.append('<div class="dx-turn dx-doctor dx-pending" data-role="pending">…</div>')
    n_facts = len({f for t in ts for f in t.revealed_facts})
    of = f" of {len(facts)}" if facts else ""
    head = (f'<div class="dx-sub">{len(ts)} turns · {n_facts}{of} facts disclosed · highlighted: the patient\'s '
            "turns that disclosed one</div>") if ts else ""
    return f'<div class="dx-transcript">{head}{"".join(rows)}</div>'
