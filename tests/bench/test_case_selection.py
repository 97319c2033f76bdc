"""Which cases a run plays: ``--limit N`` is a seeded draw stratified by label, and
``--cases-file`` names the cases exactly (issue 13, defect 6)."""

from __future__ import annotations

from collections import Counter

import pytest
from typer.testing import CliRunner

from dxgraph.bench.grid import BenchConfig, build_grid, select_cases
from dxgraph.cli import app
from dxgraph.errors import InputError
from dxgraph.simulator.cases import load_cases
from dxgraph.store import Store
from tests.subprocess_cli import one_error, run_cli


@pytest.fixture(scope="module")
def test_cases():
    return load_cases("bundled", split="test")


def test_limit_covers_as_many_labels_as_cases_not_the_first_ids(test_cases):
    picked = select_cases(test_cases, 10)
    assert len(picked) == 10
    # The first 10 ids alphabetically cover 5 labels (two cases of each).
    assert len({c.diagnosis for c in picked}) == 10


def test_limit_is_balanced_seeded_and_reproducible(test_cases):
    n_labels = len({c.diagnosis for c in test_cases})
    picked = select_cases(test_cases, n_labels + 3)
    counts = Counter(c.diagnosis for c in picked)
    assert len(counts) == n_labels and set(counts.values()) == {1, 2}
    assert [c.id for c in select_cases(test_cases, 10, seed=0)] == [c.id for c in select_cases(test_cases, 10, seed=0)]
    draws = {tuple(c.id for c in select_cases(test_cases, 10, seed=s)) for s in range(5)}
    assert len(draws) > 1


def test_cases_file_runs_exactly_the_named_cases(tmp_path, test_cases):
    ids = [test_cases[3].id, test_cases[0].id]
    f = tmp_path / "ids.txt"
    f.write_text(f"# chosen by hand\n{ids[0]}\n\n{ids[1]}\n")
    url = f"sqlite:///{tmp_path / 's.db'}"
    res = CliRunner().invoke(app, ["bench", "run", "--run-id", "f", "--cases-file", str(f), "--temperaments",
                                   "neutral", "--no-progress", "--db", url])
    assert res.exit_code == 0, res.output
    assert sorted(r.case_id for r in Store(url).samples("f")) == sorted(ids)


def test_cases_file_with_an_unknown_id_is_one_line_exit_2(tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("no-such-case\n")
    res = run_cli("bench", "run", "--run-id", "f", "--cases-file", str(f), "--temperaments", "neutral",
                  "--no-progress", "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert "'no-such-case'" in one_error(res)


def test_the_draw_is_part_of_the_run_identity(test_cases):
    a = BenchConfig(run_id="r", limit=5, seed=1).grid_identity(["neutral"])
    b = BenchConfig(run_id="r", limit=5, seed=2).grid_identity(["neutral"])
    assert a != b
    # A run without --limit keeps the identity it had before the draw existed (resumable).
    assert "seed" not in BenchConfig(run_id="r").grid_identity(["neutral"])
    grid = build_grid(BenchConfig(run_id="r", limit=4, seed=1), test_cases, ["neutral"])
    assert len(grid) == 4


def test_unknown_id_in_library_call_raises(test_cases):
    with pytest.raises(InputError, match="not in the case set"):
        select_cases(test_cases, None, case_ids=["nope"])
