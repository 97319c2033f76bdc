"""The assessor: applies the workflow's decision to the evidence and explains it.

The decision is arithmetic over the indicators that were available; an unavailable
indicator is left out and the note says so (the decision renormalises). The narrative,
when a planner model is configured, is written from the evidence table only and may not
change the outcome.
"""

from __future__ import annotations

from dxgraph.agents.planner import Plan
from dxgraph.types import Diagnosis, IndicatorResult

__all__ = ["assess", "narrate", "evidence_table"]


def assess(plan: Plan, results: list[IndicatorResult], *, seconds: float = 0.0, trace_id: str | None = None) -> Diagnosis:
    """Combine indicator results into a Diagnosis following ``plan.decision``."""
    order = {item.indicator: i for i, item in enumerate(plan.items)}
    results = sorted(results, key=lambda r: order.get(r.id, len(order)))
    available = [r for r in results if r.status == "ok"]
    missing = [r for r in results if r.status != "ok"]
    d = plan.decision
    score: float | None = None
    notes: list[str] = []
    if len(available) < max(1, d.min_available):
        outcome = plan.outcomes.indeterminate
        notes.append(f"only {len(available)} of {len(results)} indicators available; at least {max(1, d.min_available)} needed")
    elif d.method == "weighted":
        total = sum(r.weight for r in available)
        if total <= 0:
            outcome = plan.outcomes.indeterminate
            notes.append("the available indicators all have weight 0")
        else:
            score = sum(r.weight for r in available if r.passed) / total
            outcome = plan.outcomes.positive if score >= (d.threshold or 0.5) else plan.outcomes.negative
    elif d.method == "k_of_n":
        k = d.k or 1
        passed = sum(1 for r in available if r.passed)
        score = passed / len(available)
        if passed >= k:
            outcome = plan.outcomes.positive
        elif passed + len(missing) >= k:
            outcome = plan.outcomes.indeterminate
            notes.append(f"{passed} of the required {k} indicators passed; the {len(missing)} unavailable could change it")
        else:
            outcome = plan.outcomes.negative
    else:  # all | any
        passed = [bool(r.passed) for r in available]
        score = sum(passed) / len(passed)
        hit = all(passed) if d.method == "all" else any(passed)
        outcome = plan.outcomes.positive if hit else plan.outcomes.negative
    if missing and available:
        names = ", ".join(f"{r.id} ({r.error})" for r in missing)
        notes.insert(0, f"decision renormalised over {len(available)} of {len(results)} indicators; unavailable: {names}")
    return Diagnosis(
        workflow=plan.workflow, workflow_version=plan.version, outcome=outcome,
        score=None if score is None else round(score, 6), threshold=d.threshold if d.method == "weighted" else None,
        decision=d.method if d.method != "k_of_n" else f"k_of_n (k={d.k})", indicators=results,
        note="; ".join(notes), seconds=round(seconds, 6), trace_id=trace_id,
    )


def evidence_table(dx: Diagnosis) -> str:
    """The evidence as a plain-text table: one row per indicator, every number shown."""
    rows = [f"{'indicator':<24} {'value':>10} {'unit':<8} {'rule':<28} {'result':<12}"]
    for r in dx.indicators:
        value = "-" if r.value is None else (f"{r.value:.3f}" if isinstance(r.value, float) else str(r.value))
        result = "unavailable" if r.status != "ok" else ("pass" if r.passed else "fail")
        rows.append(f"{r.id:<24} {value:>10} {(r.unit or ''):<8} {(r.rule or ''):<28} {result:<12}")
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
