import json

import pytest
from typer.testing import CliRunner

from dxgraph.bench.grid import BenchConfig
from dxgraph.bench.report import build_report, compare_runs, render_html, write_html
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


def test_error_kinds_group_by_type_with_first_example_and_distinct_messages():
    from dxgraph.bench.report import error_kinds, format_error_kind
    from dxgraph.store import SampleRow

    def row(key, error):
        case, temp, strat, _ = key.split("|")
        return SampleRow(run_id="r", key=key, case_id=case, temperament=temp, strategy=strat, status="error",
                         error=error)

    rows = [row("c1|neutral|dialogue|x", "TimeoutError: sample exceeded 5 s"),
            row("c2|neutral|dialogue|x", "ModelError: HTTP 500 (openai_compat.py:268)"),
            row("c3|choleric|single|x", "ModelError: HTTP 503 (openai_compat.py:268)"),
            row("c4|neutral|dialogue|x", "ModelError: HTTP 500 (openai_compat.py:268)"),
            row("c5|neutral|dialogue|x", None),
            row("c6|neutral|dialogue|x", "the [bold]server[/bold] went away\nsecond line")]
    kinds = error_kinds(rows)
    assert [(k["kind"], k["count"], k["distinct_messages"]) for k in kinds] == \
        [("ModelError", 3, 2), ("error", 2, 2), ("TimeoutError", 1, 1)]
    assert format_error_kind(kinds[0]) == ("3 ModelError: HTTP 500 (openai_compat.py:268) "
                                           "(first: sample c2/neutral/dialogue; 1 other message of this kind)")
    assert kinds[0]["first_key"] == "c2|neutral|dialogue|x"
    assert format_error_kind(kinds[2]) == "1 TimeoutError: sample exceeded 5 s (first: sample c1/neutral/dialogue)"
    assert kinds[1]["example"] == "unknown error"  # no message stored: still counted, still named
    assert not any("second line" in k["example"] for k in kinds)  # one line per kind


async def test_cli_report_table_shows_failures_by_kind(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    store = Store(url)
    fail = {"case001|neutral|dialogue|rules": "model", "case003|neutral|dialogue|rules": "model",
            "case002|choleric|dialogue|rules": "bug"}
    await run_benchmark(BenchConfig(run_id="k"), store, progress=False, harness=FakeHarness(n_cases=4, fail=fail))
    rep = build_report(store, "k", reps=20)
    assert [(k["kind"], k["count"]) for k in rep["error_kinds"]] == [("ModelError", 2), ("KeyError", 1)]
    res = CliRunner().invoke(app, ["bench", "report", "k", "--reps", "20", "--db", url])
    assert res.exit_code == 0, res.output
    lines = [ln.strip() for ln in res.output.splitlines()]
    assert "run 'k' (partial): 17/20 done, 3 failed — synthetic cases" in lines
    i = lines.index("failed samples by error kind:")
    assert lines[i + 1].startswith("2 ModelError: endpoint 'stub' failed after 4 attempts: HTTP 500 (fakes.py:")
    assert lines[i + 1].endswith("(first: sample case001/neutral/dialogue)") or \
        lines[i + 1].endswith("(first: sample case003/neutral/dialogue)")
    assert lines[i + 2].startswith("1 KeyError: 'missing' (fakes.py:") and \
        lines[i + 2].endswith("(first: sample case002/choleric/dialogue)")
    assert "metrics below cover the 17 completed samples only; re-run the failed ones with: dxgraph bench retry k" \
        in lines
    assert "top1_accuracy" in res.output


async def test_cli_report_of_an_all_failed_run_says_so_instead_of_blank_metrics(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    store = Store(url)
    keys = [f"case000|{t}|dialogue|rules" for t in ("neutral", "choleric")]
    await run_benchmark(BenchConfig(run_id="f", temperaments=["neutral", "choleric"]), store, progress=False,
                        harness=FakeHarness(n_cases=1, fail=dict.fromkeys(keys, "model"),
                                            temperaments=["neutral", "choleric"]))
    res = CliRunner().invoke(app, ["bench", "report", "f", "--reps", "20", "--db", url])
    assert res.exit_code == 0, res.output
    assert "2 ModelError: endpoint 'stub'" in res.output
    assert "no metrics: all samples failed (2 of 2); fix the cause, then: dxgraph bench retry f" in res.output
    assert "top1_accuracy" not in res.output and "nan" not in res.output.lower()
    html = render_html(build_report(store, "f", reps=20))
    assert "<li>2 ModelError: endpoint" in html
