"""The guideline corpus and its search, with the real all-MiniLM-L6-v2 embeddings."""

import re

import pytest

from dxgraph.errors import ConfigError
from dxgraph.models.embeddings import get_embedder
from dxgraph.workflows.retrieval import corpus_dir, find_reference, load_passages, search


def test_every_passage_names_its_source():
    passages = load_passages()
    topics = {p.file for p in passages}
    assert len(topics) >= 7 and len(passages) >= 25
    for p in passages:
        assert p.ref and p.citation and re.search(r"(19|20)\d\d", p.citation), p.id
        assert "Source:" not in p.text and len(p.text.split()) >= 25, p.id
    with_url = [p for p in passages if p.url]
    assert len(with_url) >= len(passages) - 2
    assert all(p.url.startswith("https://doi.org/") for p in with_url)
    # one ref id means one publication everywhere in the corpus
    by_ref = {}
    for p in passages:
        assert by_ref.setdefault(p.ref, p.citation) == p.citation, p.ref


@pytest.mark.parametrize(("question", "topic"), [
    ("Does this fundus photograph show glaucoma?", "glaucoma"),
    ("Is the heart enlarged on this chest X-ray?", "cardiomegaly"),
    ("Is the left ventricular ejection fraction reduced?", "heart_failure"),
    ("Are there drusen of age-related macular degeneration?", "macular_degeneration"),
    ("Is there fluid in the pleural space on the radiograph?", "pleural_effusion"),
])
def test_search_finds_the_topic(question, topic):
    hits = search(question, k=3)
    assert len(hits) == 3
    assert hits[0].id.startswith(topic + "/"), [h.id for h in hits]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_glaucoma_question_retrieves_the_cup_to_disc_passage():
    hits = search("Glaucoma screening: is the optic cup enlarged?", k=5)
    assert all(h.topic.lower().startswith("glaucoma") for h in hits)
    assert "foster2002" in {h.ref for h in hits}


def test_index_is_built_once_per_process():
    search("glaucoma", k=1)
    embedder = get_embedder()
    before = embedder.calls
    search("a different question about the optic disc rim", k=2)
    assert embedder.calls == before + 1  # only the query was embedded


def test_changed_corpus_is_reindexed(tmp_path):
    f = tmp_path / "topic.md"
    body = "Some words about a criterion that is long enough to be a passage of its own, " * 2
    f.write_text(f"# Topic\n\n## Alpha criterion\n{body}\nSource: [a2020] A. Paper. J 2020;1:1. https://doi.org/10.1/a\n")
    assert [p.ref for p in search("alpha", k=5, folder=tmp_path)] == ["a2020"]
    f.write_text(f.read_text() + f"\n## Beta criterion\n{body}\nSource: [b2021] B. Paper. J 2021;2:2.\n")
    assert sorted(p.ref for p in search("beta", k=5, folder=tmp_path)) == ["a2020", "b2021"]


def test_passage_without_source_is_reported_with_file_and_line(tmp_path):
    (tmp_path / "bad.md").write_text("# Bad\n\n## First\ntext\nSource: [x1] X. 2001.\n\n## Second\nno source here\n")
    with pytest.raises(ConfigError) as info:
        load_passages(tmp_path)
    assert "bad.md:7" in str(info.value) and "Source:" in str(info.value)


def test_empty_query_is_refused():
    with pytest.raises(ConfigError, match="empty"):
        search("   ")


def test_find_reference_by_id_or_doi():
    assert find_reference("foster2002").ref == "foster2002"
    assert find_reference("whatever", "http://dx.doi.org/10.1136/BJO.86.2.238").ref == "foster2002"
    assert find_reference("smith1999", "https://doi.org/10.9999/none") is None
    assert corpus_dir().is_dir()
