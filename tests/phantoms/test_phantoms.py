"""Phantom sets: layout, labels that follow the thresholds, reproducibility, synthetic labelling."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from dxgraph.errors import InputError
from dxgraph.phantoms import THRESHOLDS, TRUTH_COLUMNS, generate


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("workflow", ["glaucoma", "diabetic_retinopathy", "cardiomegaly"])
def test_2d_sets_have_images_labels_and_truth(tmp_path, workflow):
    csv_path = generate(workflow, 4, 3, tmp_path, scale=0.5)
    rows = _rows(csv_path)
    assert list(rows[0]) == ["id", "image", "label", *TRUTH_COLUMNS[workflow]]
    assert sum(int(r["label"]) for r in rows) == 2  # balanced
    rule = THRESHOLDS[workflow]
    for r in rows:
        assert int(r["label"]) == int(rule.positive(float(r[rule.column])))
        img = np.asarray(PILImage.open(csv_path.parent / r["image"]))
        assert img.ndim == (3 if workflow != "cardiomegaly" else 2)
        assert PILImage.open(csv_path.parent / r["image"]).text["Comment"].startswith("SYNTHETIC PHANTOM")
    readme = (tmp_path / "README.txt").read_text()
    assert "SYNTHETIC" in readme and "seed: 3" in readme and str(rule) in readme


def test_hfref_volumes_carry_spacing_and_consistent_truth(tmp_path):
    rows = _rows(generate("hfref", 2, 5, tmp_path))
    assert list(rows[0]) == ["id", "image_ed", "image_es", "label", "edv_ml", "esv_ml", "ef"]
    for r in rows:
        edv, esv, ef = float(r["edv_ml"]), float(r["esv_ml"]), float(r["ef"])
        assert ef == pytest.approx(100 * (edv - esv) / edv, abs=1e-4)
        assert int(r["label"]) == int(ef <= 40)
        ed = nib.load(tmp_path / r["image_ed"])
        es = nib.load(tmp_path / r["image_es"])
        assert ed.shape == es.shape and len(ed.shape) == 3
        zooms = ed.header.get_zooms()
        assert all(1.0 < z < 4.0 for z in zooms)
        assert zooms == es.header.get_zooms()
        assert b"synthetic" in bytes(ed.header["descrip"])


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = generate("glaucoma", 3, 11, tmp_path / "a", scale=0.4)
    b = generate("glaucoma", 3, 11, tmp_path / "b", scale=0.4)
    c = generate("glaucoma", 3, 12, tmp_path / "c", scale=0.4)
    names = sorted(p.name for p in a.parent.iterdir())
    assert names == sorted(p.name for p in b.parent.iterdir())
    for name in names:
        assert (a.parent / name).read_bytes() == (b.parent / name).read_bytes(), name
    assert a.read_bytes() != c.read_bytes()


def test_nifti_output_is_reproducible(tmp_path):
    a = generate("hfref", 1, 2, tmp_path / "a")
    b = generate("hfref", 1, 2, tmp_path / "b")
    for name in ("hfref_2_0000_ed.nii.gz", "hfref_2_0000_es.nii.gz"):
        assert (a.parent / name).read_bytes() == (b.parent / name).read_bytes()


def test_truth_spreads_across_the_threshold(tmp_path):
    rows = _rows(generate("cardiomegaly", 24, 4, tmp_path, scale=0.3))
    ctr = np.array([float(r["ctr"]) for r in rows])
    assert (ctr > 0.5).sum() == 12
    assert ctr.min() < 0.42 and ctr.max() > 0.58
    assert (np.abs(ctr - 0.5) < 0.05).any()


def test_dr_negatives_have_no_microaneurysms(tmp_path):
    rows = _rows(generate("diabetic_retinopathy", 6, 8, tmp_path, scale=0.5))
    for r in rows:
        assert (int(r["ma_count"]) == 0) == (r["label"] == "0")
        assert 0 <= int(r["ma_count"]) <= 15


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"workflow": "pneumonia", "n": 2}, "no phantom generator for workflow 'pneumonia'"),
        ({"workflow": "glaucoma", "n": 0}, "n must be at least 1"),
        ({"workflow": "glaucoma", "n": 2, "scale": 10.0}, "scale must be between"),
    ],
)
def test_bad_arguments_raise_input_error(tmp_path, kwargs, match):
    with pytest.raises(InputError, match=match):
        generate(seed=0, out_dir=tmp_path, **kwargs)


def test_an_existing_set_is_kept_unless_forced_and_force_removes_only_its_files(tmp_path):
    generate("glaucoma", 3, 1, tmp_path, scale=0.3)
    (tmp_path / "mine.txt").write_text("keep me")
    before = (tmp_path / "labels.csv").read_bytes()
    with pytest.raises(InputError, match="already holds a phantom set .*pass --force"):
        generate("glaucoma", 2, 2, tmp_path, scale=0.3)
    assert (tmp_path / "labels.csv").read_bytes() == before
    generate("glaucoma", 2, 2, tmp_path, scale=0.3, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.txt", "glaucoma_2_0000.png", "glaucoma_2_0001.png", "labels.csv", "mine.txt"]


def test_force_never_removes_files_outside_the_set(tmp_path):
    (tmp_path / "outside.png").write_text("not the set's")
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "labels.csv").write_text("id,image,label\na,../outside.png,1\n")
    generate("glaucoma", 1, 0, tmp_path / "set", scale=0.3, force=True)
    assert (tmp_path / "outside.png").exists()


def test_an_output_that_is_a_file_or_unwritable_is_refused(tmp_path):
    (tmp_path / "g.json").write_text("{}")
    with pytest.raises(InputError, match=r"'.*g\.json' is a file, not a folder"):
        generate("glaucoma", 1, 0, tmp_path / "g.json")
    if Path("/proc/self").is_dir():
        with pytest.raises(InputError, match="cannot write phantoms to '/proc/x'"):
            generate("glaucoma", 1, 0, Path("/proc/x"))
