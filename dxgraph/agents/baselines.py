"""The rule doctor: an offline, deterministic baseline that never reads a case's label.

Its knowledge base is built from the TRAIN split only: every train case's complaint, facts
and visual findings, embedded with all-MiniLM-L6-v2. During a consultation it keeps a
naive-Bayes-like posterior over the labels: each observation (the complaint, the photo's
description where the strategy shows it, tool evidence, every patient answer) adds
``beta * g_L(obs)`` to label L's log-score, where ``g_L`` is the best cosine similarity of
the observation's sentences to any fact of a train case of L.

Questions come from a bank generated once from the train facts (one generic question per
fact category, plus one yes/no question per distinct train fact, worded as a doctor would ask
it: ``question_from_fact``).
The next question is the one with the largest expected information gain: for every train
case we simulate the answer it would give (its best-matching fact, as the rule patient
matches, or nothing), the posterior that answer would produce (leave-one-out, so a case
never explains itself), and take the expected drop in entropy. It stops when the
posterior's maximum reaches a threshold or at the turn limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dxgraph.agents.doctor import CaseView, DoctorAction, DoctorTurn, ToolBox
from dxgraph.agents.questions import question_from_fact
from dxgraph.errors import InputError
from dxgraph.simulator import labels as label_table
from dxgraph.models.embeddings import Embedder, cosine_matrix, get_embedder
from dxgraph.simulator.patient import (
    MATCH_THRESHOLD,
    TOPIC_QUESTIONS,
    TOPIC_THRESHOLD,
    topic_similarity,
    split_questions,
)
from dxgraph.types import Case, FinalDiagnosis, Turn

REPEAT_SIMILARITY = 0.95  # a patient sentence this close to one already heard is a repeat
SAME_TEXT = 0.999  # a complaint this close to a train case's is that case (leave-one-out)

__all__ = ["KnowledgeBase", "RuleDoctor", "question_from_fact", "sentences"]

def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", text or "") if len(s.strip()) > 2]


@dataclass
class KnowledgeBase:
    """Embedded train cases, the question bank and the precomputed answer likelihoods."""

    labels: list[str]
    case_label: np.ndarray  # (C,) label index of each train case
    fact_vecs: np.ndarray  # (F, d) facts and complaints of all train cases
    fact_case: np.ndarray  # (F,) case index of each fact
    visual_vecs: np.ndarray  # (C, d) visual findings per case (zero rows when absent)
    questions: list[str]
    question_vecs: np.ndarray  # (Q, d)
    outcome_loglik: np.ndarray  # (Q, C, L) g_L of the answer case c would give to q
    embedder: Embedder

    @classmethod
    def build(
        cls,
        cases: Sequence[Case],
        *,
        embedder: Embedder | None = None,
        match_threshold: float = MATCH_THRESHOLD,
        dedupe: float = 0.85,
    ) -> KnowledgeBase:
        """Build from train cases; a test case here would leak its label, so it is refused."""
        leaked = [c.id for c in cases if c.split != "train"]
        if leaked:
            raise InputError(f"the rule doctor learns from the train split only; case {leaked[0]!r} is {cases[0].split!r}")
        if not cases:
            raise InputError("the rule doctor needs train cases; none were given")
        emb = embedder or get_embedder()
        labels = sorted({label_table.normalize_label(c.diagnosis) or c.diagnosis for c in cases})
        index = {lab: i for i, lab in enumerate(labels)}
        case_label = np.array([index[label_table.normalize_label(c.diagnosis) or c.diagnosis] for c in cases])
        texts, owner, cats = [], [], []
        for ci, case in enumerate(cases):
            for fact in case.facts:
                texts.append(fact.text)
                owner.append(ci)
                cats.append(fact.category)
            texts.append(case.chief_complaint)
            owner.append(ci)
            cats.append("complaint")
        fact_vecs = emb.embed(texts)
        fact_case = np.array(owner)
        visual = emb.embed([c.visual_findings or " " for c in cases])
        visual[[not c.visual_findings for c in cases]] = 0.0
        # The bank: generic category questions first, then one per distinct train fact.
        bank = [TOPIC_QUESTIONS[c][0] for c in TOPIC_QUESTIONS if c in set(cats)]
        bank += [question_from_fact(t) for t, c in zip(texts, cats, strict=True) if c != "complaint"]
        bank = list(dict.fromkeys(bank))
        qv = emb.embed(bank)
        keep: list[int] = []
        for i in range(len(bank)):
            if not keep or float(np.max(qv[keep] @ qv[i])) < dedupe:
                keep.append(i)
        questions = [bank[i] for i in keep]
        qv = qv[keep]
        kb = cls(labels, case_label, fact_vecs, fact_case, visual, questions, qv, np.zeros(0), emb)
        kb.outcome_loglik = kb._simulate(match_threshold, np.array(cats))
        return kb

    def label_scores(self, vecs: np.ndarray, *, exclude_case: int | None = None, visual: bool = False,
                     fact_sims: np.ndarray | None = None) -> np.ndarray:
        """``g_L``: best similarity of any of the sentence vectors to label L's train cases.

        ``exclude_case``: a case index or an array of them, left out (leave-one-out).
        ``fact_sims`` (the rows' cosines to ``fact_vecs``, already computed) saves the product.
        """
        L = len(self.labels)
        if vecs.size == 0:
            return np.zeros(L)
        if visual:
            per_case = cosine_matrix(vecs, self.visual_vecs).max(0)
        else:
            sims = (cosine_matrix(vecs, self.fact_vecs) if fact_sims is None else fact_sims).max(0)  # (F,)
            per_case = np.full(len(self.case_label), -1.0)
            np.maximum.at(per_case, self.fact_case, sims)
        if exclude_case is not None:
            per_case = per_case.copy()
            per_case[exclude_case] = -1.0
        out = np.full(L, -1.0)
        np.maximum.at(out, self.case_label, per_case)
        return np.where(out < -0.5, 0.0, out)

    def _simulate(self, threshold: float, cats: np.ndarray) -> np.ndarray:
        """For each question and train case, ``g_L`` of the answer that case would give.

        The answer is found as the rule patient finds it: direct similarity, or the topic
        of a generic question.
        """
        Q, C, L = len(self.questions), len(self.case_label), len(self.labels)
        direct = cosine_matrix(self.question_vecs, self.fact_vecs)  # (Q, F)
        topics = topic_similarity(self.embedder, self.question_vecs)
        by_topic = np.array([[t.get(c, -1.0) for c in cats] for t in topics])
        on_topic = by_topic >= TOPIC_THRESHOLD
        q_to_fact = np.where(on_topic, np.maximum(direct, by_topic), direct)
        q_to_fact = np.where(on_topic | (direct >= threshold), q_to_fact, -1.0)
        q_to_fact[:, cats == "complaint"] = -1.0  # complaints are said at the start, not as answers
        fact_to_fact = cosine_matrix(self.fact_vecs, self.fact_vecs)  # (F, F)
        # Leave-one-out g_L for each fact as an answer: its own case never counts.
        per_case = np.full((len(self.fact_case), C), -1.0)
        for c in range(C):
            cols = self.fact_case == c
            if cols.any():
                per_case[:, c] = fact_to_fact[:, cols].max(1)
        per_case[np.arange(len(self.fact_case)), self.fact_case] = -1.0
        g_fact = np.full((len(self.fact_case), L), -1.0)
        for lab in range(L):
            cols = self.case_label == lab
            g_fact[:, lab] = per_case[:, cols].max(1)
        g_fact = np.where(g_fact < -0.5, 0.0, g_fact)
        out = np.zeros((Q, C, L))
        for c in range(C):
            cols = np.flatnonzero(self.fact_case == c)
            sims = q_to_fact[:, cols]
            best = sims.argmax(1)
            answered = sims[np.arange(Q), best] > -0.5
            out[answered, c, :] = g_fact[cols[best[answered]]]
        return out


_KB_CACHE: dict[str, KnowledgeBase] = {}


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis)


class RuleDoctor:
    """Information-gain questioning over a train-split knowledge base.

    Args:
        kb: the knowledge base (``KnowledgeBase.build(load_cases(split="train"))``).
        strategy: ``single``, ``dialogue``, ``dialogue+image`` or ``dialogue+image+tools``.
        beta: how strongly one observation moves the posterior (log-score per unit cosine).
        visual_beta: the same for the photo's description and tool evidence.
        confidence: stop and answer once the posterior's maximum reaches this.
        min_gain: stop asking when no question is expected to gain more (nats).
        evidence_floor: answer sentences less similar than this to every train fact are
            treated as no evidence.
        tools: the ToolBox used under ``dialogue+image+tools`` (workflow or VLM evidence).
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        strategy: str = "dialogue",
        beta: float = 12.0,
        visual_beta: float = 12.0,
        confidence: float = 0.9,
        min_gain: float = 1e-3,
        evidence_floor: float = 0.45,
        tools: ToolBox | None = None,
    ):
        self.kb = kb
        self.strategy = strategy
        self.beta = beta
        self.visual_beta = visual_beta
        self.confidence = confidence
        self.min_gain = min_gain
        self.evidence_floor = evidence_floor
        self.tools = tools or ToolBox()
        self.spec = f"rules|{strategy}"

    @classmethod
    def from_train_split(cls, source: str = "bundled", *, strategy: str = "dialogue", **kwargs) -> RuleDoctor:
        """A RuleDoctor over the train split of ``source`` (the base is built once per process
        and kept on disk under the settings' cache folder, keyed by content: agents/kb_cache.py)."""
        if source not in _KB_CACHE:
            from dxgraph.agents.kb_cache import load_or_build
            from dxgraph.config import load_settings
            from dxgraph.simulator.cases import load_cases

            train = load_cases(source=source, split="train")
            _KB_CACHE[source] = load_or_build(train, load_settings().cache_dir)
        return cls(_KB_CACHE[source], strategy=strategy, **kwargs)

    def _observations(self, view: CaseView, transcript: Sequence[Turn]) -> list[tuple[str, float, bool]]:
        obs = [(view.chief_complaint, self.beta, False)]
        if view.visual_findings:
            obs.append((view.visual_findings, self.visual_beta, True))
        for i, turn in enumerate(transcript):
            if turn.role == "patient" and i > 0:
                obs.append((turn.text, self.beta, False))
            elif turn.role == "tool" and not turn.text.startswith("unavailable"):
                obs.append((turn.text, self.visual_beta, True))
        return obs

    def own_cases(self, view: CaseView) -> np.ndarray:
        """Leave-one-out: the train cases the consulted case is a copy of (its complaint verbatim).

        Found from what the doctor sees, not from an id, so it holds for opaque ids and for a
        run on the train split (allowed only by an explicit flag); those cases are left out of
        the posterior and of the question choice, as if the base had been built without them.
        """
        cache = self.__dict__.setdefault("_own", {})
        if view.chief_complaint not in cache:
            vec = self.kb.embedder.embed([view.chief_complaint])
            rows = np.flatnonzero(cosine_matrix(vec, self.kb.fact_vecs)[0] >= SAME_TEXT)
            cache[view.chief_complaint] = np.unique(self.kb.fact_case[rows])
        return cache[view.chief_complaint]

    def posterior(self, view: CaseView, transcript: Sequence[Turn]) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
        """The posterior over ``kb.labels`` and each observation's log-score contribution."""
        own = self.own_cases(view)
        exclude = own if own.size else None
        others = ~np.isin(self.kb.fact_case, own)
        logp = np.zeros(len(self.kb.labels))
        contributions = []
        heard: list[np.ndarray] = []
        for text, beta, visual in self._observations(view, transcript):
            vecs = self.kb.embedder.embed(sentences(text) or [text])
            fact_sims = None
            if not visual:
                # The posterior is recomputed from the whole transcript every turn: keep each
                # text's cosines to the base, the one product whose size grows with the base.
                cache = self.__dict__.setdefault("_fact_sims", {})
                if text not in cache:
                    if len(cache) > 1024:
                        cache.clear()
                    cache[text] = cosine_matrix(vecs, self.kb.fact_vecs)
                fact_sims = cache[text]
                # Sentences like "No idea." or "I'm so worried" resemble nothing in the base:
                # they carry no evidence, and their noise would otherwise add up.
                relevant = fact_sims[:, others].max(1) >= self.evidence_floor
                # A fact the patient repeats is not new evidence: count each one once.
                if heard:
                    relevant &= cosine_matrix(vecs, np.vstack(heard)).max(1) < REPEAT_SIMILARITY
                vecs = vecs[relevant]
                fact_sims = fact_sims[relevant]
                heard.extend(vecs)
            delta = beta * self.kb.label_scores(vecs, exclude_case=exclude, visual=visual, fact_sims=fact_sims)
            logp += delta
            contributions.append((text, delta))
        p = np.exp(logp - logp.max())
        return p / p.sum(), contributions

    def _outcome_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """``E = exp(s)`` and ``E * s`` for ``s = beta * g`` shifted to max 0 over labels, as
        ``(Q, C, L)`` float32: fixed per doctor, so each question choice is three mat-vecs."""
        if getattr(self, "_terms", None) is None:
            g = self.beta * self.kb.outcome_loglik
            s = (g - g.max(-1, keepdims=True)).astype(np.float32)
            e = np.exp(s)
            self._terms = (e, e * s)
        return self._terms

    def next_question(self, p: np.ndarray, asked: Sequence[str],
                      exclude: np.ndarray | None = None) -> tuple[int | None, float]:
        """The bank question with the largest expected information gain, and that gain.

        ``exclude``: train cases left out (leave-one-out) of the expectation.
        """
        kb = self.kb
        keep = np.ones(len(kb.case_label), dtype=bool)
        if exclude is not None:
            keep[exclude] = False
        counts = np.bincount(kb.case_label[keep], minlength=len(kb.labels)).astype(float)
        weight = np.where(keep, p[kb.case_label] / np.maximum(counts[kb.case_label], 1.0), 0.0)  # P(true case is c)
        # Cases the posterior has all but ruled out cannot change the expectation.
        weight = np.where(weight > 1e-6, weight, 0.0)
        e, es = self._outcome_terms()  # (Q, C, L)
        p32 = p.astype(np.float32)
        logp = np.log(np.clip(p, 1e-30, None)).astype(np.float32)
        # Entropy of the posterior p*exp(s)/Z after each (question, case) answer, without
        # materialising it: H = log Z - (sum(w log p) + sum(w s)) / Z with w = p*exp(s),
        # Z = E @ p, sum(w log p) = E @ (p log p), sum(w s) = (E*s) @ p.
        z = e @ p32  # (Q, C)
        h = np.log(z) - (e @ (p32 * logp) + es @ p32) / z
        gain = _entropy(p) - h @ (weight / weight.sum())  # (Q,)
        if asked:
            dup = cosine_matrix(kb.question_vecs, kb.embedder.embed(list(asked))).max(1) >= 0.85
            gain[dup] = -np.inf
        best = int(np.argmax(gain))
        return (best, float(gain[best])) if math.isfinite(gain[best]) else (None, 0.0)

    async def act(self, view: CaseView, transcript: Sequence[Turn], *, must_finalize: bool = False) -> DoctorTurn:
        """Ask the most informative question, or conclude when confident or out of turns."""
        import time

        start = time.perf_counter()
        tool_turns: list[Turn] = []
        if view.uses_tools and not any(t.role == "tool" for t in transcript):
            tool_turns = await self.tools.evidence(view)
            transcript = [*transcript, *tool_turns]
        concluded = self._from_workflow(tool_turns or [t for t in transcript if t.role == "tool"])
        if concluded is not None:
            return DoctorTurn(action=DoctorAction(final=concluded), latency_ms=(time.perf_counter() - start) * 1000,
                              tool_turns=tool_turns)
        p, contributions = self.posterior(view, transcript)
        asked = [q for t in transcript if t.role == "doctor" for q in split_questions(t.text)]
        done = must_finalize or view.strategy == "single" or p.max() >= self.confidence
        if not done:
            q, gain = self.next_question(p, asked, self.own_cases(view))
            if q is not None and gain > self.min_gain:
                action = DoctorAction(question=self.kb.questions[q])
                return DoctorTurn(action=action, latency_ms=(time.perf_counter() - start) * 1000,
                                  tool_turns=tool_turns)
        action = DoctorAction(final=self._final(p, contributions))
        return DoctorTurn(action=action, latency_ms=(time.perf_counter() - start) * 1000, tool_turns=tool_turns)

    @staticmethod
    def _from_workflow(turns: Sequence[Turn]) -> FinalDiagnosis | None:
        """A workflow that ran and reached an outcome is the imaging diagnosis; its whole
        evidence summary is the basis (the dialogue labels cannot name it)."""
        from dxgraph.agents.doctor import workflow_label

        for t in turns:
            label = workflow_label(t.text) if t.tool and t.tool.startswith("workflow:") else None
            if label is not None:
                # the workflow's calibrated probability where it has one; else the weighted
                # evidence score stands in (it is not a probability, and the basis says which)
                m = re.search(r"; probability ([0-9.]+)", t.text) or re.search(r"; evidence score ([0-9.]+)", t.text)
                score = float(m.group(1)) if m else 0.5
                negative = label.startswith(("no ", "normal "))
                confidence = 1 - score if negative else score
                # without a calibrated probability the number is an evidence score: say so
                # ("evidence score 1.00, threshold 0.5; sign present in 2/2 ...") rather than
                # let it read as "confidence 100%"
                said = [part for part in t.text.split("; ") if part.startswith(("evidence score", "sign present in", "coverage"))]
                evidence = None if "; probability " in t.text or not said else "; ".join(said)
                return FinalDiagnosis(label=label, confidence=round(min(1.0, max(0.0, confidence)), 4),
                                      basis=f"Diagnostic workflow evidence: {t.text}", evidence=evidence)
        return None

    def _final(self, p: np.ndarray, contributions: list[tuple[str, np.ndarray]]) -> FinalDiagnosis:
        order = np.argsort(-p, kind="stable")
        top = int(order[0])
        # An observation "moved" the answer by how much more it favoured it than the average label.
        moved = sorted(
            ((float(d[top] - d.mean()), text) for text, d in contributions), reverse=True
        )
        basis = "; ".join(f"{text.strip()[:120]!r}" for lift, text in moved[:3] if lift > 0)
        return FinalDiagnosis(
            label=self.kb.labels[top],
            confidence=round(float(p[top]), 4),
            differential=[self.kb.labels[int(i)] for i in order[:3]],
            basis=f"Findings that favoured {self.kb.labels[top]}: {basis}" if basis else "no finding stood out",
        )

