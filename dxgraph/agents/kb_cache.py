"""The rule doctor's knowledge base kept on disk, so each ``bench run`` need not re-embed the train split.

A base is a pure function of the train cases' content, the embedding model and the code that
builds it; the file's name is a hash of all three, so editing a case, swapping the model or
changing the builder makes a new entry instead of reading a stale one. Files are ``.npz``
arrays plus a JSON header (loaded with ``allow_pickle=False``: nothing in the cache can run
code), written to a temporary name and renamed into place, so two processes building at once
never leave half a file. An unreadable entry is rebuilt, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dxgraph.agents.baselines import KnowledgeBase
from dxgraph.models.embeddings import Embedder, get_embedder
from dxgraph.types import Case

log = logging.getLogger(__name__)

FORMAT = 1
_ARRAYS = ("case_label", "fact_vecs", "fact_case", "visual_vecs", "question_vecs", "outcome_loglik")
# Modules whose code decides what the base holds (bank wording, matching, labels).
_BUILDER_MODULES = (
    "dxgraph.agents.baselines",
    "dxgraph.agents.questions",
    "dxgraph.simulator.labels",
    "dxgraph.simulator.patient",
)


def _model_identity(embedder: Embedder) -> str:
    """The embedding model's folder name, its config and its files' sizes (weights are not read)."""
    from dxgraph.models.embeddings import _model_dir

    folder = Path(embedder.model_dir or _model_dir())
    h = hashlib.sha256(f"{folder.name}|max_length={embedder.max_length}".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
        if path.name == "config.json":
            h.update(path.read_bytes())
    return h.hexdigest()


def _builder_identity() -> str:
    h = hashlib.sha256()
    for name in _BUILDER_MODULES:
        module = sys.modules.get(name)
        if module is None:
            __import__(name)
            module = sys.modules[name]
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def cache_key(cases: Sequence[Case], embedder: Embedder) -> str:
    """Hash of the cases' content (in order), the embedding model and the builder's code."""
    h = hashlib.sha256(f"kb-format-{FORMAT}".encode())
    for case in cases:
        h.update(case.model_dump_json().encode())
        h.update(b"\0")
    h.update(_model_identity(embedder).encode())
    h.update(_builder_identity().encode())
    return h.hexdigest()[:32]


def save(kb: KnowledgeBase, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"format": FORMAT, "labels": kb.labels, "questions": kb.questions})
    arrays = {name: getattr(kb, name) for name in _ARRAYS}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kb-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, header=np.frombuffer(header.encode(), dtype=np.uint8), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, embedder: Embedder) -> KnowledgeBase | None:
    """The base stored at ``path``, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(data["header"].tobytes().decode())
            if header.get("format") != FORMAT:
                return None
            arrays = {name: data[name] for name in _ARRAYS}
    except Exception as exc:  # a truncated or foreign file: rebuild it
        log.warning("knowledge-base cache %s unreadable (%s); rebuilding", path, exc)
        return None
    return KnowledgeBase(
        labels=list(header["labels"]),
        questions=list(header["questions"]),
        embedder=embedder,
        **arrays,
    )


def load_or_build(cases: Sequence[Case], cache_dir: Path | None, *, embedder: Embedder | None = None) -> KnowledgeBase:
    """The base for ``cases`` from ``cache_dir/kb/`` when present, else built and stored there.

    ``cache_dir=None`` builds without a cache. Refusals (test cases, no cases) come from
    ``KnowledgeBase.build`` before any file is read or written.
    """
    emb = embedder or get_embedder()
    if cache_dir is None or any(c.split != "train" for c in cases) or not cases:
        return KnowledgeBase.build(cases, embedder=emb)
    path = Path(cache_dir) / "kb" / f"{cache_key(cases, emb)}.npz"
    kb = load(path, emb)
    if kb is not None:
        return kb
    kb = KnowledgeBase.build(cases, embedder=emb)
    try:
        save(kb, path)
    except OSError as exc:  # a read-only home still gets a working doctor
        log.warning("could not store the knowledge base in %s: %s", path, exc)
    return kb
