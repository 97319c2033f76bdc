"""Phantom family b: drawn differently from family a, labelled by the same thresholds."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image as PILImage

from dxgraph.errors import InputError
from dxgraph.phantoms import THRESHOLDS, TRUTH_COLUMNS, generate
from dxgraph.phantoms.fundus_b import render_fundus_b


def _rows(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("workflow", ["glaucoma", "diabetic_retinopathy"])
def test_family_b_sets_follow_the_thresholds_and_name_their_family(tmp_path, workflow):
    path = generate(workflow, 4, 7, tmp_path, scale=0.5, family="b")
    rows = _rows(path)
    assert list(rows[0]) == ["id", "image", "label", *TRUTH_COLUMNS[workflow]]
    rule = THRESHOLDS[workflow]
    for r in rows:
        assert r["id"].startswith(f"{workflow}_b_7_")
        assert int(r["label"]) == int(rule.positive(float(r[rule.column])))
        assert PILImage.open(tmp_path / r["image"]).text["Comment"].startswith("SYNTHETIC PHANTOM")
    assert "family: b" in (tmp_path / "README.txt").read_text()


def test_family_b_is_reproducible_and_differs_from_family_a(tmp_path):
    b1 = generate("glaucoma", 2, 11, tmp_path / "b1", scale=0.4, family="b")
    b2 = generate("glaucoma", 2, 11, tmp_path / "b2", scale=0.4, family="b")
    a = generate("glaucoma", 2, 11, tmp_path / "a", scale=0.4)
    assert b1.read_bytes() == b2.read_bytes()
    for rb, ra in zip(_rows(b1), _rows(a)):
        assert (b1.parent / rb["image"]).read_bytes() == (b2.parent / rb["image"]).read_bytes()
        assert rb["vcdr"] != ra["vcdr"]  # its own random stream, not family a's draw


def test_family_b_draws_only_the_fundus_workflows(tmp_path):
    with pytest.raises(InputError, match="family 'b' draws only"):
        generate("cardiomegaly", 2, 1, tmp_path, family="b")
    with pytest.raises(InputError, match="unknown phantom family"):
        generate("glaucoma", 2, 1, tmp_path, family="z")


def test_mimics_are_not_microaneurysms_in_the_truth():
    rng = np.random.default_rng(5)
    img, truth = render_fundus_b(rng, 320, 0.4, ma_count=0, mimics=True)
    plain, _ = render_fundus_b(np.random.default_rng(5), 320, 0.4, ma_count=0, mimics=False)
    assert truth.ma_count == 0
    assert img.shape == plain.shape and not np.array_equal(img, plain)  # something was drawn, none counted


def test_cli_generates_family_b_and_refuses_it_for_chest(tmp_path):
    from typer.testing import CliRunner

    from dxgraph.cli import app

    ok = CliRunner().invoke(app, ["phantoms", "generate", "-w", "glaucoma", "-n", "2", "--family", "b",
                                  "-o", str(tmp_path / "g")])
    assert ok.exit_code == 0, ok.output
    assert "family b" in ok.output and _rows(tmp_path / "g" / "labels.csv")[0]["id"].startswith("glaucoma_b_")
    bad = CliRunner().invoke(app, ["phantoms", "generate", "-w", "cardiomegaly", "-n", "2", "--family", "b",
                                   "-o", str(tmp_path / "c")])
    # an InputError is what ``dxgraph.cli.main`` turns into one red line and exit code 2
    assert isinstance(bad.exception, InputError) and "use --family a" in str(bad.exception)
