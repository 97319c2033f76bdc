"""Patient fidelity per temperament, and the doctor-side effects of each temperament.

The fidelity metrics describe the simulator, whatever the doctor: they are read from the
patient's per-reply ``Disclosure`` records stored in each ``SampleResult`` (in the spirit of
PatientSim's persona-fidelity checks), so one can see whether a temperament behaves where
3MDBench says it should (a sanguine patient volunteers, a phlegmatic one tells only what is
asked directly, a melancholic one voices worries, a choleric one leaves early).

The doctor-side block is top-1, top-3, facts elicited and doctor turns per temperament, with
the paired difference of each temperament against ``neutral`` on the cases both finished.
Every interval is a 95% percentile bootstrap over cases (a case's samples move together).
Rows stored before disclosure records existed give no fidelity figures (n = 0), never zeros
presented as measurements.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from dxgraph.bench.record import SampleResult

__all__ = ["FIDELITY_METRICS", "DOCTOR_METRICS", "patient_fidelity", "fidelity_markdown", "fidelity_html"]

# name -> what it is (numerator over denominator), for the report's legend.
FIDELITY_METRICS: dict[str, str] = {
    "facts_per_turn": "facts told per patient reply",
    "volunteered_share": "share of told facts nobody asked about",
    "direct_share": "share of told facts a question asked about directly (not only by topic)",
    "withheld_per_turn": "matched facts held back per reply (direct-only, cut short)",
    "severity_share": "share of told facts softened or amplified",
    "words_per_turn": "words per patient reply",
    "distractor_rate": "worry distractors (non-facts) per reply",
    "digression_rate": "off-topic asides per reply",
    "patient_ended": "share of consultations the patient asked to end",
    "label_leaks": "replies naming the case's label, per reply",
}
DOCTOR_METRICS = ("top1_accuracy", "top3_accuracy", "facts_elicited", "mean_turns")


def _bootstrap(case_ids: Sequence[str], num: np.ndarray, den: np.ndarray, reps: int,
               rng: np.random.Generator) -> dict[str, Any]:
    """Ratio of sums with a 95% bootstrap over cases."""
    n = int(len(num))
    if n == 0 or float(den.sum()) == 0.0:
        return {"value": None, "ci_low": None, "ci_high": None, "n": n}
    uniq, inv = np.unique(np.asarray(case_ids), return_inverse=True)
    cnum = np.bincount(inv, weights=num, minlength=len(uniq))
    cden = np.bincount(inv, weights=den, minlength=len(uniq))
    w = rng.multinomial(len(uniq), np.full(len(uniq), 1.0 / len(uniq)), size=reps)
    boot = (w @ cnum) / np.maximum(w @ cden, 1e-12)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"value": round(float(num.sum() / den.sum()), 4), "ci_low": round(float(lo), 4),
            "ci_high": round(float(hi), 4), "n": n}


def _fidelity_arrays(results: Sequence[SampleResult]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in FIDELITY_METRICS}
    for r in results:
        d = r.disclosures
        replies = float(len(d))
        told = float(sum(len(set(x.asked) | set(x.volunteered)) for x in d))
        rows["facts_per_turn"].append((told, replies))
        rows["volunteered_share"].append((float(sum(len(x.volunteered) for x in d)), told))
        rows["direct_share"].append((float(sum(len(x.direct) for x in d)), told))
        rows["withheld_per_turn"].append((float(sum(len(x.withheld) for x in d)), replies))
        rows["severity_share"].append((float(sum(len(x.severity) for x in d)), told))
        rows["words_per_turn"].append((float(sum(x.words for x in d)), replies))
        rows["distractor_rate"].append((float(sum(len(x.distractors) for x in d)), replies))
        rows["digression_rate"].append((float(sum(x.digressions for x in d)), replies))
        rows["patient_ended"].append((float(any(x.end_request for x in d) or r.ended_by == "patient"),
                                      1.0 if d else 0.0))
        rows["label_leaks"].append((float(sum(bool(x.label_leaks) for x in d)), replies))
    return {k: (np.array([a for a, _ in v]), np.array([b for _, b in v])) for k, v in rows.items()}


def _doctor_values(r: SampleResult) -> dict[str, float]:
    correct = bool(r.judge and r.judge.correct)
    return {"top1_accuracy": float(correct), "top3_accuracy": float(correct or bool(r.judge and r.judge.top3_correct)),
            "facts_elicited": float(r.facts_elicited), "mean_turns": float(r.turns)}


def patient_fidelity(rows, *, reps: int = 1000, seed: int = 0, control: str = "neutral") -> dict[str, Any]:
    """Per temperament: the patient-fidelity metrics and the doctor-side effects.

    Args:
        rows: the run's finished ``SampleRow``s (``case_id``, ``temperament``, ``result_json``).
        reps: bootstrap replicates.
        control: the temperament the paired differences are taken against.

    Returns:
        ``{"fidelity": {temperament: {metric: {value, ci_low, ci_high, n}}},
        "doctor": {temperament: {...}}, "vs_control": {"t - control": {...}}, "control": control}``
    """
    groups: dict[str, list[tuple[str, SampleResult]]] = {}
    for row in rows:
        groups.setdefault(row.temperament, []).append((row.case_id, SampleResult.from_json(row.result_json)))
    rng = np.random.default_rng(seed)
    fidelity: dict[str, dict[str, Any]] = {}
    doctor: dict[str, dict[str, Any]] = {}
    per_case: dict[str, dict[str, list[dict[str, float]]]] = {}
    for temperament, items in groups.items():
        cases = [c for c, _ in items]
        arrays = _fidelity_arrays([r for _, r in items])
        fidelity[temperament] = {k: _bootstrap(cases, num, den, reps, rng) for k, (num, den) in arrays.items()}
        values = [_doctor_values(r) for _, r in items]
        ones = np.ones(len(values))
        doctor[temperament] = {m: _bootstrap(cases, np.array([v[m] for v in values]), ones, reps, rng)
                               for m in DOCTOR_METRICS}
        for case, v in zip(cases, values, strict=True):
            per_case.setdefault(temperament, {}).setdefault(case, []).append(v)
    vs_control: dict[str, dict[str, Any]] = {}
    base = per_case.get(control, {})
    for temperament, by_case in per_case.items():
        if temperament == control:
            continue
        shared = sorted(set(by_case) & set(base))
        block = {}
        for m in DOCTOR_METRICS:
            diffs = np.array([np.mean([v[m] for v in by_case[c]]) - np.mean([v[m] for v in base[c]]) for c in shared])
            block[m] = _bootstrap(shared, diffs, np.ones(len(diffs)), reps, rng)
        vs_control[f"{temperament} - {control}"] = block
    return {"fidelity": fidelity, "doctor": doctor, "vs_control": vs_control, "control": control}


def _cell(v: dict[str, Any] | None) -> str:
    if not v or v.get("value") is None:
        return "n/a"
    return f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"


def fidelity_markdown(block: dict[str, Any]) -> str:
    """The per-temperament section as markdown tables (the benchmark script and text output)."""
    out = []
    fid = block.get("fidelity") or {}
    if fid:
        names = list(FIDELITY_METRICS)
        out.append("| temperament | " + " | ".join(names) + " |")
        out.append("|---" * (len(names) + 1) + "|")
        out += [f"| {t} | " + " | ".join(_cell(m.get(k)) for k in names) + " |" for t, m in fid.items()]
    for title, groups in (("doctor", block.get("doctor") or {}), ("vs_control", block.get("vs_control") or {})):
        if groups:
            out.append("")
            out.append(f"| {'temperament' if title == 'doctor' else 'pair'} | " + " | ".join(DOCTOR_METRICS) + " |")
            out.append("|---" * (len(DOCTOR_METRICS) + 1) + "|")
            out += [f"| {g} | " + " | ".join(_cell(m.get(k)) for k in DOCTOR_METRICS) + " |" for g, m in groups.items()]
    return "\n".join(out)


def fidelity_html(block: dict[str, Any] | None) -> str:
    """The per-temperament section for the HTML report (empty when there is nothing to show)."""
    if not block or not block.get("fidelity"):
        return ""

    def table(groups: dict[str, dict[str, Any]], metrics: Sequence[str], first: str) -> str:
        head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
        body = "".join(f"<tr><td>{html.escape(g)}</td>" + "".join(f"<td>{_cell(b.get(m))}</td>" for m in metrics)
                       + "</tr>" for g, b in groups.items())
        return f"<table><tr><th>{html.escape(first)}</th>{head}</tr>{body}</table>"

    legend = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in FIDELITY_METRICS.items())
    return (f"<h2>Patient fidelity by temperament</h2><p>What the simulated patient did, independent of "
            f"the doctor (95% bootstrap over cases).</p><ul>{legend}</ul>"
            + table(block["fidelity"], list(FIDELITY_METRICS), "temperament")
            + "<h3>Doctor-side effects by temperament</h3>" + table(block.get("doctor") or {}, DOCTOR_METRICS, "temperament")
            + f"<h3>Paired against {html.escape(str(block.get('control')))}</h3>"
            + table(block.get("vs_control") or {}, DOCTOR_METRICS, "pair"))
