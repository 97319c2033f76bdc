"""Calibration through the real graph with small real tools on a synthetic labelled set."""

import csv
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dxgraph.cli import app
from dxgraph.errors import InputError, ToolError
from dxgraph.tools.data import Image
from dxgraph.tools.registry import tool
from dxgraph.tools.cache import ToolCache
from dxgraph.tools.runner import ToolRunner
from dxgraph.bench.calibrate import MIN_WEIGHT, bump_version, calibrate_workflow, dump_workflow
from dxgraph.workflows.loader import parse_workflow
from tests.workflows.toytools import CALLS  # importing registers the toy tools

WF = textwrap.dedent(
    """\
    id: toy_pair
    name: Toy pair
    version: "1.0"
    modality: toy
    question: Is it high?
    outcomes: {positive: high, negative: low}
    inputs: [{name: a}, {name: b}]
    indicators:
      - id: informative
        description: share of high pixels in image a (tracks the label)
        kind: quantitative
        steps:
          - {tool: toy_load, inputs: {path: a}, outputs: img}
          - {tool: toy_split, inputs: {image: img}, outputs: [low, high]}
          - {tool: toy_fraction, inputs: {low: low, high: high}, outputs: frac}
        rule: frac >= 0.5
      - id: noise
        description: share of high pixels in image b (independent of the label)
        kind: quantitative
        steps:
          - {tool: toy_load, inputs: {path: b}, outputs: img}
          - {tool: toy_split, inputs: {image: img}, outputs: [low, high]}
          - {tool: toy_fraction, inputs: {low: low, high: high}, outputs: frac}
        rule: frac >= 0.5
    decision: {method: weighted, threshold: 0.5}
    """
)
HIGH, LOW = "0.9 0.8 0.7 0.1\n", "0.1 0.2 0.3 0.9\n"


def make_set(folder, n: int, *, seed: int = 0, agree: float = 0.85, labels=None):
    """Synthetic toy images and labels.csv: image a agrees with the label with probability ``agree``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "image_a", "image_b", "label"])
        for i in range(n):
            y = labels[i] if labels else int(rng.random() < 0.4)
            a_high = y if rng.random() < agree else 1 - y
            (folder / f"a{i}.txt").write_text(HIGH if a_high else LOW)
            (folder / f"b{i}.txt").write_text(HIGH if rng.random() < 0.5 else LOW)
            w.writerow([f"s{i}", f"a{i}.txt", f"b{i}.txt", y])
    return folder


@pytest.fixture()
def runner(tmp_path):
    return ToolRunner(ToolCache(tmp_path / "cache"), strict=True)


async def test_informative_indicator_gets_the_larger_weight(tmp_path, runner):
    wf = parse_workflow(WF)
    data = make_set(tmp_path / "cal", 60, seed=1)
    new, report = await calibrate_workflow(wf, data, runner=runner)
    w = {i.id: i.weight for i in new.indicators}
    assert w["informative"] > 1.0 and w["informative"] > 3 * w["noise"]
    assert w["noise"] >= MIN_WEIGHT
    assert report["coefficients"]["informative"] > report["coefficients"]["noise"]
    # threshold = -b / sum(w): the informative indicator alone decides
    t = new.decision.threshold
    assert new.decision.method == "weighted" and 0 <= t <= 1
    assert w["noise"] / sum(w.values()) < t <= w["informative"] / sum(w.values())
    assert new.version == "1.0-cal1"
    cal = new.calibration
    assert cal["n"] == 60 and cal["from_version"] == "1.0" and "balanced" in cal["method"]
    assert cal["training_balanced_accuracy"] == pytest.approx(report["after"]["balanced_accuracy"], abs=1e-4)
    # equal weights at 0.5 call "either passes" positive; the fit ignores the noise
    assert report["after"]["balanced_accuracy"] > report["before"]["balanced_accuracy"]
    assert report["after"]["balanced_accuracy"] >= 0.75


async def test_written_file_validates_and_round_trips(tmp_path, runner):
    wf = parse_workflow(WF)
    new, _ = await calibrate_workflow(wf, make_set(tmp_path / "cal", 30, seed=2), runner=runner)
    text = dump_workflow(new, header="calibrated\nfor a test")
    assert text.startswith("# calibrated\n# for a test\nid: toy_pair\n")
    again = parse_workflow(text)
    assert again.model_dump() == new.model_dump()
    new2, _ = await calibrate_workflow(again, make_set(tmp_path / "cal2", 30, seed=3), runner=runner)
    assert new2.version == "1.0-cal2" and new2.calibration["from_version"] == "1.0-cal1"


async def test_too_few_rows_or_one_class_is_refused(tmp_path, runner):
    wf = parse_workflow(WF)
    with pytest.raises(InputError, match="at least 10"):
        await calibrate_workflow(wf, make_set(tmp_path / "few", 9), runner=runner)
    with pytest.raises(InputError, match=r"12 positive \(label 1\) and 0 negative \(label 0\) rows; .* at least 5 of each"):
        await calibrate_workflow(wf, make_set(tmp_path / "ones", 12, labels=[1] * 12), runner=runner)
    CALLS.clear()
    with pytest.raises(InputError, match=r"2 positive \(label 1\) and 10 negative .* at least 5 of each"):
        await calibrate_workflow(wf, make_set(tmp_path / "rare", 12, labels=[1, 1] + [0] * 10), runner=runner)
    assert CALLS == {}  # refused before any image was run


@tool(version="1", outputs=("frac",))
def cal_picky(image: Image) -> float:
    """Fails (recoverably) on dark toy images, like a segmenter that finds nothing.

    Args:
        image: a toy image.
    """
    if float(image.array.mean()) < 0.5:
        raise ToolError(f"nothing found (mean {float(image.array.mean()):.2f})")
    return 1.0


async def test_indicator_mostly_unavailable_is_refused_naming_counts_and_reason(tmp_path, runner):
    wf = parse_workflow(WF.replace("{tool: toy_load, inputs: {path: b}, outputs: img}\n      - {tool: toy_split, "
                                   "inputs: {image: img}, outputs: [low, high]}\n      - {tool: toy_fraction, "
                                   "inputs: {low: low, high: high}, outputs: frac}",
                                   "{tool: toy_load, inputs: {path: b}, outputs: img}\n      - {tool: cal_picky, "
                                   "inputs: {image: img}, outputs: frac}"))
    assert wf.indicators[1].steps[1].tool == "cal_picky"
    data = make_set(tmp_path / "cal", 40, seed=6)
    for i in range(40):  # image b is bright, so the indicator available, on 12 rows of 40 only
        (data / f"b{i}.txt").write_text(HIGH if i < 12 else LOW)
    with pytest.raises(InputError) as err:
        await calibrate_workflow(wf, data, runner=runner)
    msg = str(err.value)
    assert "'noise' was available on only 12 of 40 rows" in msg and "at least 20" in msg, msg
    assert "nothing found (mean 0.38)" in msg and "\n" not in msg
    for i in range(40):  # available on 20 of 40: enough
        (data / f"b{i}.txt").write_text(HIGH if i < 20 else LOW)
    _, report = await calibrate_workflow(wf, data, runner=runner)
    assert report["unavailable"] == {"informative": 0, "noise": 20} and report["not_fitted"] == []


async def test_no_indicator_available_anywhere_is_refused(tmp_path, runner):
    wf = parse_workflow(WF.replace("{tool: toy_split, inputs: {image: img}, outputs: [low, high]}\n      - "
                                   "{tool: toy_fraction, inputs: {low: low, high: high}, outputs: frac}",
                                   "{tool: toy_fail, inputs: {image: img}, outputs: frac}"))
    assert [i.steps[1].tool for i in wf.indicators] == ["toy_fail", "toy_fail"]
    with pytest.raises(InputError, match="no indicator of 'toy_pair' was available on any of the 30 rows"):
        await calibrate_workflow(wf, make_set(tmp_path / "cal", 30, seed=7), runner=runner)


def test_cli_refuses_a_rare_class_in_one_line(tmp_path):
    data = tmp_path / "cal"
    data.mkdir()
    rows = [f"c{i},ed{i}.nii.gz,es{i}.nii.gz,{int(i == 0)}" for i in range(12)]
    (data / "labels.csv").write_text("id,image_ed,image_es,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "new" / "dir" / "hfref_cal.yaml"
    r = subprocess.run([str(Path(sys.executable).with_name("dxgraph")), "workflows", "calibrate", "hfref", "--data",
                        str(data), "-o", str(out)], capture_output=True, text=True, timeout=180)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "1 positive (label 1) and 11 negative (label 0) rows; calibration needs at least 5 of each" in r.stderr
    assert not out.parent.exists()


def test_bump_version():
    assert bump_version("1.0") == "1.0-cal1"
    assert bump_version("2-cal9") == "2-cal10"


def test_cli_writes_the_calibrated_version(tmp_path):
    src = tmp_path / "toy.yaml"
    src.write_text(WF)
    data = make_set(tmp_path / "cal", 40, seed=4)
    out = tmp_path / "out" / "new" / "toy_cal.yaml"
    result = CliRunner().invoke(app, ["workflows", "calibrate", str(src), "--data", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    said = " ".join(result.output.split())  # rich wraps long lines
    assert f"wrote {out.resolve()} (created the folder {(tmp_path / 'out').resolve()})" in said, said
    text = out.read_text()
    assert text.startswith("# Calibrated from toy_pair v1.0")
    assert parse_workflow(text).version == "1.0-cal1"
    assert "TRAINING-set accuracy" in result.output and "dxgraph evaluate" in result.output


async def test_indicator_unavailable_everywhere_is_flagged_not_fitted(tmp_path, runner):
    wf = parse_workflow(WF.replace(
        "      - {tool: toy_load, inputs: {path: b}, outputs: img}\n      - {tool: toy_split, inputs: {image: img}, outputs: [low, high]}\n      - {tool: toy_fraction, inputs: {low: low, high: high}, outputs: frac}\n    rule: frac >= 0.5",
        "      - {tool: toy_load, inputs: {path: b}, outputs: img}\n      - {tool: toy_fail, inputs: {image: img}, outputs: frac}\n    rule: frac >= 0.5"))
    assert wf.indicators[1].steps[1].tool == "toy_fail"
    new, report = await calibrate_workflow(wf, make_set(tmp_path / "cal", 30, seed=5), runner=runner)
    assert report["not_fitted"] == ["noise"] and report["unavailable"] == {"informative": 0, "noise": 30}
    assert report["coefficients"]["noise"] == 0 and new.indicators[1].weight == MIN_WEIGHT


def test_training_metrics_leave_indeterminate_outcomes_out_and_report_coverage():
    from dxgraph.types import Diagnosis
    from dxgraph.bench.calibrate import _metrics

    wf = parse_workflow(WF)
    o = wf.outcomes
    dxs = [Diagnosis(workflow=wf.id, outcome=o.positive, score=0.9),
           Diagnosis(workflow=wf.id, outcome=o.negative, score=0.1),
           Diagnosis(workflow=wf.id, outcome=o.indeterminate),
           Diagnosis(workflow=wf.id, outcome=o.indeterminate)]
    m = _metrics(wf, dxs, [1, 0, 1, 1])
    # Counted as negatives, the two indeterminate positives would be two misses.
    assert m["balanced_accuracy"] == 1.0 and m["coverage"] == 0.5


def test_cli_checks_the_output_before_the_fit(tmp_path):
    src = tmp_path / "toy.yaml"
    src.write_text(WF)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "toy_cal.yaml"
    # the data folder does not exist: had the fit run first, that would be the error
    r = CliRunner().invoke(app, ["workflows", "calibrate", str(src), "--data", str(tmp_path / "none"), "-o", str(out)])
    assert isinstance(r.exception, InputError) and f"cannot write -o/--out '{out}'" in str(r.exception)


def test_cli_overwrites_an_existing_file_only_with_force(tmp_path):
    src = tmp_path / "toy.yaml"
    src.write_text(WF)
    out = tmp_path / "toy_cal.yaml"
    out.write_text("# mine\n")
    r = CliRunner().invoke(app, ["workflows", "calibrate", str(src), "--data", str(tmp_path / "none"), "-o", str(out)])
    assert isinstance(r.exception, InputError) and "already exists; pass --force" in str(r.exception)
    assert out.read_text() == "# mine\n"
    data = make_set(tmp_path / "cal", 40, seed=4)
    r = CliRunner().invoke(app, ["workflows", "calibrate", str(src), "--data", str(data), "-o", str(out), "--force"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert f"overwrote {out.resolve()}" in " ".join(r.output.split())
    assert out.read_text().startswith("# Calibrated from toy_pair v1.0")
