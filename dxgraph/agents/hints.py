"""The ``dialogue+hints`` strategy: a classifier's ranked labels in the doctor's context.

3MDBench's best condition puts a CNN's top-3 diagnoses beside the photo in the doctor's
prompt. Here the doctor sees what ``dialogue+image`` shows (the photo, or its description),
plus up to three labels a classifier suggested, most likely first. The labels come from the
user's file (``bench run --hints``), never from the case's own label: hints are classifier
output that may be wrong, and a doctor is told so.

* ``HintedView`` is a ``CaseView`` with a ``hints`` field (the view a doctor reads stays the
  one place that says what it may see).
* ``HintedLLMDoctor`` adds one prompt line after the patient's introduction:
  ``A classifier that looked at the photo suggests: a, b, c (most likely first; it can be wrong).``
* ``HintedRuleDoctor`` adds a prior boost to the rule doctor's log-posterior: the k-th hint
  (k = 0, 1, 2) gets ``hint_beta * (3 - k) / 3`` (default 3.0, 2.0, 1.0 nats, i.e. the first
  hint is worth about as much as a quarter of one fully matching observation at ``beta`` 12).
  The boost enters the posterior as one more observation, so the answer's "basis" names it
  when it moved the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dxgraph.agents.baselines import RuleDoctor
from dxgraph.agents.doctor import CaseView, LLMDoctor
from dxgraph.models.base import Message, user
from dxgraph.types import Case, Turn

__all__ = ["HINT_STRATEGY", "BASE_STRATEGY", "HintedView", "HintedLLMDoctor", "HintedRuleDoctor", "hinted_view",
           "hint_line"]

HINT_STRATEGY = "dialogue+hints"
BASE_STRATEGY = "dialogue+image"  # what a hinted doctor sees besides the hints


class HintedView(CaseView):
    """A ``dialogue+image`` view plus a classifier's labels, most likely first."""

    hints: tuple[str, ...] = ()


def hinted_view(case: Case, hints: Sequence[str]) -> HintedView:
    """The doctor's view of ``case`` under ``dialogue+hints``; ``hints`` come from the user's file."""
    base = CaseView.from_case(case, BASE_STRATEGY)
    return HintedView(**base.model_dump(), hints=tuple(hints)[:3])


def hint_line(hints: Sequence[str]) -> str:
    return (f"A classifier that looked at the photo suggests: {', '.join(hints)} "
            "(most likely first; it can be wrong).")


class HintedLLMDoctor(LLMDoctor):
    """An LLM doctor whose prompt carries the view's hints after the introduction."""

    def __init__(self, model, **kwargs):
        super().__init__(model, **{**kwargs, "strategy": BASE_STRATEGY})
        self.spec = f"{getattr(model, 'spec', 'llm')}|{HINT_STRATEGY}"

    def messages(self, view: CaseView, transcript: Sequence[Turn], must_finalize: bool) -> list[Message]:
        msgs = super().messages(view, transcript, must_finalize)
        hints = getattr(view, "hints", ())
        if hints:
            msgs.insert(2, user(hint_line(hints)))
        return msgs


class HintedRuleDoctor(RuleDoctor):
    """The rule doctor with the hints as a prior boost (see the module docstring)."""

    hint_beta: float = 3.0

    @classmethod
    def from_train_split(cls, source: str = "bundled", *, strategy: str = HINT_STRATEGY, **kwargs) -> HintedRuleDoctor:
        doctor = super().from_train_split(source, strategy=BASE_STRATEGY, **kwargs)
        doctor.spec = f"rules|{HINT_STRATEGY}"
        return doctor

    def posterior(self, view: CaseView, transcript: Sequence[Turn]) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
        p, contributions = super().posterior(view, transcript)
        hints = [h for h in getattr(view, "hints", ()) if h in self.kb.labels][:3]
        if not hints:
            return p, contributions
        delta = np.zeros(len(self.kb.labels))
        for rank, label in enumerate(hints):
            delta[self.kb.labels.index(label)] = self.hint_beta * (3 - rank) / 3
        logp = np.log(np.clip(p, 1e-300, None)) + delta
        q = np.exp(logp - logp.max())
        return q / q.sum(), [*contributions, (hint_line(hints), delta)]
