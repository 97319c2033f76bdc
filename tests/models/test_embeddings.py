"""Sentence vectors kept on disk: a later process reads them back without loading the model."""

from __future__ import annotations

import numpy as np

from dxgraph.models.embeddings import EMBEDDING_DIM, DiskVectors, Embedder, get_embedder

TEXTS = ["It itches at night.", "When did the rash start?", "I have no fever."]


def test_a_fresh_process_reads_vectors_back_without_the_model(tmp_path):
    first = Embedder(cache_dir=tmp_path)
    vecs = first.embed(TEXTS)
    assert first.calls == 1
    first._disks[tmp_path].flush()  # what exit does
    fresh = Embedder(cache_dir=tmp_path)  # a new process: nothing in memory, no model loaded
    again = fresh.embed([TEXTS[1], TEXTS[0]])
    assert fresh.calls == 0 and fresh._model is None
    assert np.array_equal(again, vecs[[1, 0]])
    # a text not stored yet is embedded (the model loads) and joins the store
    fresh.embed(["Any new moles?"])
    assert fresh.calls == 1


def test_the_process_wide_embedder_keeps_vectors_under_the_settings_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DXGRAPH_HOME", str(tmp_path))
    emb = get_embedder()
    assert emb.cache_dir == tmp_path / "cache" / "embeddings"
    emb.embed(["a text only this test embeds, 7f3a"])
    emb._disks[emb.cache_dir].flush()
    assert list((tmp_path / "cache" / "embeddings").rglob("*.npz"))


def test_an_unreadable_shard_is_skipped_and_a_read_only_folder_only_warns(tmp_path, caplog):
    store = DiskVectors(tmp_path / "m", flush_every=1)
    vec = np.ones((1, EMBEDDING_DIM), np.float32)
    store.add(["kept"], vec)
    (tmp_path / "m" / "0-garbage.npz").write_bytes(b"not a zip file")
    assert list(DiskVectors(tmp_path / "m").get(["kept", "other"])) == ["kept"]
    assert "unreadable" in caplog.text
    blocked = DiskVectors(tmp_path / "file-not-folder" / "m", flush_every=1)
    (tmp_path / "file-not-folder").write_text("x")
    blocked.add(["t"], vec)  # cannot write: warns, keeps working from memory
    assert "could not store" in caplog.text and list(blocked.get(["t"])) == ["t"]


def test_shards_are_merged_keeping_the_newest_texts(tmp_path):
    store = DiskVectors(tmp_path, limit=5, max_shards=3, flush_every=1)
    for i in range(8):
        store.add([f"t{i}"], np.full((1, EMBEDDING_DIM), i, np.float32))
    shards = list(tmp_path.glob("*.npz"))
    assert len(shards) <= 3
    kept = DiskVectors(tmp_path).get([f"t{i}" for i in range(8)])
    assert "t7" in kept and "t0" not in kept and len(kept) <= 5 + 3
    assert float(kept["t7"][0]) == 7.0
