import json

import pytest
from typer.testing import CliRunner

from dxgraph.bench.grid import BenchConfig
from dxgraph.bench.report import build_report, compare_runs, write_html
from dxgraph.bench.runner import run_benchmark
from dxgraph.cli import app
from dxgraph.errors import InputError
from dxgraph.store import Store
from tests.bench.fakes import FakeHarness


@pytest.fixture()
async def populated(tmp_path):
    url = f"sqlite:///{tmp_path / 'rep.db'}"
    store = Store(url)
    fail = {"case001|neutral|single|rules": "model"}
    await run_benchmark(BenchConfig(run_id="a", strategies=["dialogue", "single"]), store, progress=False,
                        harness=FakeHarness(n_cases=6, fail=fail))
    await run_benchmark(BenchConfig(run_id="b", strategies=["dialogue"]), store, progress=False,
                        harness=FakeHarness(n_cases=6, fail={"case000|neutral|dialogue|rules": "bug"}))
    return url, store


async def test_report_json_shape_and_values(populated):
    _, store = populated
    rep = build_report(store, "a", reps=200)
    assert (rep["run_id"], rep["status"], rep["samples_total"], rep["samples_done"], rep["samples_failed"]) == \
        ("a", "partial", 60, 59, 1)
    assert rep["synthetic"] is True
    acc = rep["metrics"]["overall"]["top1_accuracy"]
    assert set(acc) >= {"value", "ci_low", "ci_high", "n"} and acc["n"] == 59
    # even cases answer right: 3 of 6 cases; the failed sample (odd case) is left out
    assert acc["value"] == pytest.approx(30 / 59)
    assert set(rep["metrics"]["by_strategy"]) == {"dialogue", "single"}
    assert "dialogue - single" in rep["metrics"]["paired"]["strategy"]
    assert rep["errors"][0]["key"] == "case001|neutral|single|rules"
    assert rep["confusion"]["columns"][-1] == "(abstained)"
    json.dumps(rep)  # serialisable


async def test_html_is_self_contained_with_plots_and_synthetic_banner(populated, tmp_path):
    _, store = populated
    path = write_html(build_report(store, "a", reps=100), tmp_path / "out" / "a.html")
    text = path.read_text()
    assert text.count("data:image/png;base64,") >= 3
    assert "synthetic vignettes" in text and "<h2>By temperament</h2>" in text
    assert "http://" not in text and "https://" not in text


async def test_compare_pairs_on_shared_keys(populated):
    _, store = populated
    cmp = compare_runs(store, "a", "b", reps=100)
    assert cmp["paired_on"] == "sample keys"
    assert cmp["shared_samples"] == 29  # 30 dialogue keys, one failed in b
    assert cmp["metrics"]["top1_accuracy"]["delta"]["value"] == pytest.approx(0.0)
    with pytest.raises(InputError, match="no run 'zzz'"):
        compare_runs(store, "a", "zzz")


async def test_cli_report_compare_list(populated, tmp_path):
    url, _ = populated
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "report", "a", "--json", "--reps", "50", "--db", url])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["samples_done"] == 59
    html = tmp_path / "r.html"
    res = runner.invoke(app, ["bench", "report", "a", "--html", str(html), "--reps", "50", "--db", url])
    assert res.exit_code == 0 and html.exists()
    res = runner.invoke(app, ["bench", "compare", "a", "b", "--json", "--reps", "50", "--db", url])
    assert json.loads(res.output)["paired_on"] == "sample keys"
    res = runner.invoke(app, ["bench", "list", "--json", "--db", url])
    assert {r["run_id"] for r in json.loads(res.output)} == {"a", "b"}
