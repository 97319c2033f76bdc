"""The assessor: applies the workflow's decision to the evidence and explains it.

The decision is arithmetic over the indicators that were available; an unavailable
indicator is left out and the note says so (the decision renormalises), and below the
workflow's minimum evidence coverage the outcome is indeterminate rather than negative.
Each rule states an abnormal sign: a rule that holds reads "sign present", never "pass". The narrative,
when a planner model is configured, is written from the evidence table only and may not
change the outcome.
"""

from __future__ import annotations

from dxgraph.agents.planner import Plan
from dxgraph.types import Diagnosis, IndicatorResult

__all__ = ["assess", "narrate", "evidence_table", "describe_score"]


def _evidence(r: IndicatorResult) -> float | None:
    """1 for a sign present, 0 for absent, per policy for "uncertain", None when not counted."""
    if r.status != "ok":
        return None
    if r.finding == "uncertain":
        return {"half": 0.5, "absent": 0.0}.get(r.uncertain)
    if r.passed is None:
        return None
    return 1.0 if r.passed else 0.0


def _units(results: list[IndicatorResult], groups: dict[str, float]) -> list[tuple[str, float, float | None]]:
    """(name, weight, evidence or None) per decision unit: a group of indicators, or one alone.

    A group's evidence is the mean of its counted members weighted by their shares (their own
    weights), so one segmentation counts once however many numbers it yields."""
    units: dict[str, tuple[float, list[tuple[float, float]]]] = {}
    for r in results:
        key = r.group if r.group in groups else r.id
        _, ev = units.setdefault(key, (groups[key] if key in groups else r.weight, []))
        e = _evidence(r)
        if e is not None:
            ev.append((r.weight, e))
    out = []
    for name, (w, ev) in units.items():
        shares = sum(s for s, _ in ev)
        value = (sum(s * e for s, e in ev) / shares if shares > 0 else sum(e for _, e in ev) / len(ev)) if ev else None
        out.append((name, w, value))
    return out


def assess(plan: Plan, results: list[IndicatorResult], *, seconds: float = 0.0, trace_id: str | None = None) -> Diagnosis:
    """Combine indicator results into a Diagnosis following ``plan.decision``.

    A group (indicators from one segmentation) counts once, with its weight times the
    share-weighted mean of its members' evidence. Coverage is the share of the total weight that was counted;
    below ``min_coverage`` the outcome is indeterminate and the note gives the reason.
    """
    order = {item.indicator: i for i, item in enumerate(plan.items)}
    results = sorted(results, key=lambda r: order.get(r.id, len(order)))
    counted = [r for r in results if _evidence(r) is not None]
    missing = [r for r in results if _evidence(r) is None]
    units = _units(results, plan.decision.groups)
    total_w = sum(w for _, w, _ in units)
    avail_w = sum(w for _, w, ev in units if ev is not None)
    coverage = avail_w / total_w if total_w > 0 else (1.0 if counted else 0.0)
    d = plan.decision
    score: float | None = None
    notes: list[str] = []
    present = [r for r in counted if _evidence(r) == 1.0]
    if len(counted) < max(1, d.min_available):
        outcome = plan.outcomes.indeterminate
        notes.append(f"only {len(counted)} of {len(results)} indicators available; at least {max(1, d.min_available)} needed")
    elif coverage + 1e-9 < d.min_coverage:
        outcome = plan.outcomes.indeterminate
        notes.append(f"evidence coverage {coverage:.0%} of the decision's weight is below the workflow's minimum "
                     f"{d.min_coverage:.0%}: no call is made on so little evidence")
    elif d.method == "weighted":
        if avail_w <= 0:
            outcome = plan.outcomes.indeterminate
            notes.append("the available indicators all have weight 0")
        else:
            score = sum(w * ev for _, w, ev in units if ev is not None) / avail_w
            outcome = plan.outcomes.positive if score >= (d.threshold or 0.5) else plan.outcomes.negative
    elif d.method == "k_of_n":
        k = d.k or 1
        score = len(present) / len(counted)
        if len(present) >= k:
            outcome = plan.outcomes.positive
        elif len(present) + len(missing) >= k:
            outcome = plan.outcomes.indeterminate
            notes.append(f"{len(present)} of the required {k} signs present; the {len(missing)} unavailable could change it")
        else:
            outcome = plan.outcomes.negative
    else:  # all | any
        score = len(present) / len(counted)
        hit = len(present) == len(counted) if d.method == "all" else bool(present)
        outcome = plan.outcomes.positive if hit else plan.outcomes.negative
    if missing and counted:
        names = ", ".join(f"{r.id} ({r.error or r.finding})" for r in missing)
        notes.insert(0, f"decision renormalised over {len(counted)} of {len(results)} indicators (coverage {coverage:.0%} of the weight); "
                        f"unavailable: {names}")
    if outcome == plan.outcomes.negative and present:
        # a negative call must not hide a sign that was seen but outweighed
        notes.insert(0, "sign present but below the decision threshold: " + ", ".join(r.id for r in present))
    return Diagnosis(
        workflow=plan.workflow, workflow_version=plan.version, outcome=outcome,
        score=None if score is None else round(score, 6), threshold=d.threshold if d.method == "weighted" else None,
        decision=d.method if d.method != "k_of_n" else f"k_of_n (k={d.k})", indicators=results,
        note="; ".join(notes), seconds=round(seconds, 6), trace_id=trace_id, coverage=round(coverage, 6),
    )


def evidence_table(dx: Diagnosis) -> str:
    """The evidence as a plain-text table: one row per indicator, every number shown."""
    rows = [f"{'indicator':<24} {'value':>10} {'unit':<8} {'rule (abnormal if)':<28} {'finding':<12}"]
    for r in dx.indicators:
        value = "-" if r.value is None else (f"{r.value:.3f}" if isinstance(r.value, float) else str(r.value))
        rows.append(f"{r.id:<24} {value:>10} {(r.unit or ''):<8} {(r.rule or ''):<28} {r.finding:<12}")
    return "\n".join(rows)


async def narrate(dx: Diagnosis, plan: Plan, model) -> str:
    """Ask the planner model for a short explanation of the evidence (never the decision)."""
    from dxgraph.models.base import GenerateConfig, system, user

    prompt = (
        f"Question: {plan.question}\nDecision method: {dx.decision}; outcome: {dx.outcome}; score: {dx.score}\n"
        f"Evidence:\n{evidence_table(dx)}\n{dx.note}\n"
        "Write 3-5 sentences for a clinician explaining which measurements support the outcome and "
        "which are unavailable. Quote the numbers. Do not change or second-guess the outcome."
    )
    out = await model.generate(
        [system("You explain automated diagnostic evidence to clinicians, precisely and briefly."), user(prompt)],
        config=GenerateConfig(temperature=0.0, max_tokens=300),
    )
    return out.text.strip()


def describe_score(dx: Diagnosis) -> str:
    """The decision's number in words that say what it is, for the CLI and the doctor.

    A weighted evidence score is not a probability: "evidence score 1.00" on two of four
    indicators is not "100 % confident". So it is given with its threshold, how many of the
    indicators read show the sign, and the share of the weight that could be read; a
    calibrated probability, where the workflow has one, is named as such.
    """
    parts = []
    if dx.probability is not None:
        parts.append(f"probability {dx.probability:.2f} (calibrated)")
    if dx.score is not None:
        thr = f", threshold {dx.threshold:g}" if dx.threshold is not None else ""
        parts.append(f"evidence score {dx.score:.2f}{thr}")
    read = [r for r in dx.indicators if r.finding in ("sign present", "sign absent", "uncertain")]
    if read:
        present = sum(r.finding == "sign present" for r in read)
        parts.append(f"sign present in {present}/{len(read)} indicators read ({len(dx.indicators)} in the workflow)")
    if dx.coverage is not None:
        parts.append(f"coverage {dx.coverage:.0%} of the weight")
    return "; ".join(parts)
