"""Scoring a workflow on a labelled set: indeterminate samples are reported, not called negative."""

import pytest
from typer.testing import CliRunner

from tests.workflows.toytools import FRAC_STEPS, TOY_HEAD  # also registers the toy tools
from dxgraph.cli import app
from dxgraph.errors import InputError
from dxgraph.tools.cache import ToolCache
from dxgraph.tools.runner import ToolRunner
from dxgraph.bench.evaluate import evaluate_workflow, read_labels
from dxgraph.workflows.loader import find_workflow, parse_workflow

WF = (TOY_HEAD
      + "  - id: frac\n    description: share of high pixels\n    kind: quantitative\n"
      + FRAC_STEPS
      + "    rule: frac >= 0.5\ndecision: {method: weighted, threshold: 0.5}\n")


@pytest.fixture()
def data(tmp_path):
    """Four samples; 'c' is unreadable, so its only indicator is unavailable and its outcome indeterminate."""
    (tmp_path / "hi.txt").write_text("0.9 0.9 0.1\n")
    (tmp_path / "lo.txt").write_text("0.1 0.1 0.9\n")
    (tmp_path / "bad.txt").write_text("not numbers\n")
    (tmp_path / "labels.csv").write_text("id,image,label,frac\na,hi.txt,1,0.66\nb,lo.txt,0,0.33\nc,bad.txt,1,\nd,hi.txt,1,\n")
    return tmp_path


async def test_indeterminate_samples_are_excluded_and_counted(data, tmp_path):
    report = await evaluate_workflow(parse_workflow(WF), data, runner=ToolRunner(ToolCache(tmp_path / "cache")))
    assert (report["n"], report["n_determinate"], report["coverage"]) == (4, 3, 0.75)
    assert report["indeterminate"] == 1 and report["indeterminate_ids"] == ["c"]
    m = report["metrics"]
    # 'c' is a positive: scored as a negative it would have been a false negative (sensitivity 2/3)
    assert m["n"] == 3 and (m["tp"], m["fn"], m["tn"]) == (2, 0, 1) and m["sensitivity"] == 1.0
    assert {s["id"]: s["pred"] for s in report["samples"]} == {"a": 1, "b": 0, "c": None, "d": 1}


def test_cli_says_how_indeterminate_samples_were_counted(data, tmp_path):
    (tmp_path / "toy.yaml").write_text(WF)
    r = CliRunner().invoke(app, ["evaluate", "-w", str(tmp_path / "toy.yaml"), "-d", str(data)], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "0.750 (3 of 4 determinate)" in r.stdout
    assert "1 indeterminate sample(s) (c) are excluded from accuracy" in r.stdout


def test_missing_image_column_names_the_users_column(tmp_path):
    (tmp_path / "labels.csv").write_text("id,img,label\na,x.png,1\n")
    with pytest.raises(InputError) as info:
        read_labels(tmp_path, find_workflow("glaucoma")[0])
    assert "column 'image' missing" in str(info.value) and "image_image" not in str(info.value)
    (tmp_path / "labels.csv").write_text("id,image_ed,label\na,x.nii,1\n")
    with pytest.raises(InputError, match=r"column 'image_es' missing: workflow 'hfref' takes 2 images per row \(ed, es\)"):
        read_labels(tmp_path, find_workflow("hfref")[0])


def test_an_empty_or_header_only_labels_file_is_refused(tmp_path):
    wf = find_workflow("glaucoma")[0]
    (tmp_path / "labels.csv").write_text("")
    with pytest.raises(InputError, match=r"labels\.csv is empty: it needs a header row"):
        read_labels(tmp_path, wf)
    (tmp_path / "labels.csv").write_text("id,image,label,vcdr\n")
    r = CliRunner().invoke(app, ["evaluate", "-w", "glaucoma", "-d", str(tmp_path)])
    assert isinstance(r.exception, InputError) and f"no rows to evaluate in {tmp_path / 'labels.csv'}" in str(r.exception)


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_a_limit_below_one_is_a_usage_error(data, limit):
    r = CliRunner().invoke(app, ["evaluate", "-w", "glaucoma", "-d", str(data), "--limit", limit])
    assert r.exit_code == 2 and "--limit" in r.output


async def test_library_limit_below_one_is_refused(data):
    with pytest.raises(InputError, match="limit must be at least 1"):
        await evaluate_workflow(parse_workflow(WF), data, limit=-1)


def test_f1_without_any_positive_is_undefined_like_the_others(data, tmp_path):
    from dxgraph.bench.evaluate import binary_metrics

    assert binary_metrics([0, 0], [0, 0])["f1"] is None and binary_metrics([0, 1], [1, 0])["f1"] == 0.0
    (data / "labels.csv").write_text("id,image,label\nc,bad.txt,1\n")  # its one outcome is indeterminate
    (tmp_path / "toy.yaml").write_text(WF)
    r = CliRunner().invoke(app, ["evaluate", "-w", str(tmp_path / "toy.yaml"), "-d", str(data)], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    f1 = [line for line in r.stdout.splitlines() if " f1 " in line]
    assert len(f1) == 1 and f1[0].split("│")[2].strip() == "-"


def test_sklearn_metrics_keep_the_figures_of_the_hand_written_ones():
    """The glaucoma phantom run on main (seed 20000, n 30) scored TP 14 TN 15 FP 0 FN 1; scores with
    ties: the hand-written Mann-Whitney AUC gave 0.99333 on these, and sklearn must give the same."""
    from dxgraph.bench.evaluate import binary_metrics
    y = [1] * 15 + [0] * 15
    p = [1] * 14 + [0] + [0] * 15
    s = [0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.66, 0.9, 0.95, 0.8, 0.7, 0.6, 0.6, 0.75, 0.4,
         0.1, 0.2, 0.45, 0.3, 0.3, 0.1, 0.0, 0.2, 0.4, 0.3, 0.2, 0.1, 0.25, 0.3, 0.35]
    m = binary_metrics(p, y, s)
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (14, 15, 0, 1)
    assert m["accuracy"] == pytest.approx(0.966667, abs=1e-6) and m["balanced_accuracy"] == pytest.approx(0.966667, abs=1e-6)
    assert m["sensitivity"] == pytest.approx(14 / 15) and m["specificity"] == 1.0
    assert m["f1"] == pytest.approx(0.965517, abs=1e-6) and m["auc"] == pytest.approx(0.993333, abs=1e-6)
    # undefined ratios stay None rather than sklearn's 0-with-a-warning
    assert binary_metrics([0, 0], [0, 0], [0.1, 0.2])["sensitivity"] is None
    assert binary_metrics([0, 0], [0, 0], [0.1, 0.2])["auc"] is None
    assert binary_metrics([], [])["accuracy"] is None
