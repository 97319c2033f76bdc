"""The rule doctor's knowledge base on disk: reused across processes, keyed by content and model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dxgraph.agents import baselines
from dxgraph.agents.baselines import KnowledgeBase, RuleDoctor
from dxgraph.agents.kb_cache import cache_key, load_or_build
from dxgraph.models.embeddings import Embedder, get_embedder
from dxgraph.simulator.cases import load_cases


@pytest.fixture(scope="module")
def train():
    return load_cases(split="train")[:8]


def _same(a: KnowledgeBase, b: KnowledgeBase) -> None:
    assert a.labels == b.labels and a.questions == b.questions
    for name in ("case_label", "fact_vecs", "fact_case", "visual_vecs", "question_vecs", "outcome_loglik"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_a_second_process_reads_the_base_without_embedding_anything(train, tmp_path):
    built = load_or_build(train, tmp_path, embedder=get_embedder())
    files = list((tmp_path / "kb").glob("*.npz"))
    assert len(files) == 1
    fresh = Embedder()  # what a new process has: nothing embedded, no model loaded
    loaded = load_or_build(train, tmp_path, embedder=fresh)
    assert fresh.calls == 0 and fresh._model is None
    _same(built, loaded)
    assert loaded.embedder is fresh


def test_key_follows_case_content_and_embedding_model(train):
    emb = get_embedder()
    key = cache_key(train, emb)
    assert cache_key(list(train), emb) == key
    edited = [train[0].model_copy(update={"chief_complaint": train[0].chief_complaint + " and a cough"}), *train[1:]]
    assert cache_key(edited, emb) != key
    assert cache_key(train[:-1], emb) != key
    assert cache_key(train, Embedder(max_length=64)) != key


def test_an_unreadable_entry_is_rebuilt_and_replaced(train, tmp_path):
    load_or_build(train, tmp_path)
    (path,) = (tmp_path / "kb").glob("*.npz")
    path.write_bytes(b"not an npz file")
    kb = load_or_build(train, tmp_path)
    assert kb.outcome_loglik.size and path.stat().st_size > 1000
    assert not [p for p in (tmp_path / "kb").iterdir() if p.name.startswith(".kb-")]


def test_test_cases_are_still_refused_before_any_file_is_written(tmp_path):
    from dxgraph.errors import InputError

    with pytest.raises(InputError, match="train split only"):
        load_or_build(load_cases(split="test")[:2], tmp_path)
    assert not (tmp_path / "kb").exists()


@pytest.mark.slow
def test_from_train_split_stores_the_base_under_the_home_cache(monkeypatch):
    monkeypatch.setattr(baselines, "_KB_CACHE", {})
    RuleDoctor.from_train_split("bundled")
    home = os.environ["DXGRAPH_HOME"]
    assert len(list((Path(home) / "cache" / "kb").glob("*.npz"))) == 1
    monkeypatch.setattr(baselines, "_KB_CACHE", {})
    fresh = Embedder()
    monkeypatch.setattr("dxgraph.agents.kb_cache.get_embedder", lambda: fresh)
    doctor = RuleDoctor.from_train_split("bundled")
    assert fresh.calls == 0 and len(doctor.kb.labels) > 10
