"""Public data-set loaders, each on a few files written here in the layout its publisher ships
(layout sources in each loader's docstring), and ``evaluate --dataset`` end to end on them.

Images are synthetic phantoms so the workflow has something to measure; masks are drawn with
known extents so the truth the loader derives can be checked exactly."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dxgraph.bench.datasets import load_dataset, parse_spec
from dxgraph.bench.datasets import acdc, idrid, jsrt, refuge
from dxgraph.cli import app
from dxgraph.errors import InputError
from dxgraph.phantoms.cardiac import render_lv_pair
from dxgraph.phantoms.chest import render_chest
from dxgraph.phantoms.fundus import render_fundus


def _disc_cup_mask(size, cy, cx, disc_r, cup_r):
    yy, xx = np.mgrid[:size, :size]
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    mask = np.full((size, size), 255, np.uint8)
    mask[d2 <= disc_r**2] = 128
    mask[d2 <= cup_r**2] = 0
    return mask


@pytest.fixture()
def refuge_dir(tmp_path):
    root = tmp_path / "REFUGE"
    for folder, stem, vcdr, (disc_r, cup_r) in (("Glaucoma", "g0001", 0.75, (40, 30)),
                                                ("Non-Glaucoma", "n0001", 0.35, (40, 14))):
        img, _ = render_fundus(np.random.default_rng(5), 512, vcdr)
        (root / "Training400" / folder).mkdir(parents=True)
        Image.fromarray(img).save(root / "Training400" / folder / f"{stem}.jpg", quality=95)
        masks = root / "Annotation-Training400" / "Disc_Cup_Masks" / folder
        masks.mkdir(parents=True)
        Image.fromarray(_disc_cup_mask(512, 250, 300, disc_r, cup_r)).save(masks / f"{stem}.bmp")
    return root


def test_refuge_truth_is_the_masks_vertical_cup_over_disc(refuge_dir):
    rows = refuge.load(refuge_dir)
    assert [(r["id"], r["label"]) for r in rows] == [("g0001", 1), ("n0001", 0)]
    assert rows[0]["truth"]["vcdr"] == pytest.approx(61 / 81) and rows[1]["truth"]["vcdr"] == pytest.approx(29 / 81)


def test_evaluate_dataset_runs_end_to_end_on_refuge(refuge_dir):
    r = CliRunner().invoke(app, ["evaluate", "-w", "glaucoma", "--dataset", f"refuge:{refuge_dir}", "--json", "--samples"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["n"] == 2 and report["mae"]["vcdr"]["n"] == 2 and report["data"] == f"refuge:{refuge_dir}"
    assert {s["id"]: s["truth"]["vcdr"] for s in report["samples"]}["g0001"] == pytest.approx(61 / 81)


def test_idrid_grades_give_any_dr_labels(tmp_path):
    root = tmp_path / "B. Disease Grading"
    images = root / "1. Original Images" / "a. Training Set"
    images.mkdir(parents=True)
    for i, ma in ((1, 4), (2, 0)):
        img, _ = render_fundus(np.random.default_rng(i), 384, 0.4, ma_count=ma)
        Image.fromarray(img).save(images / f"IDRiD_{i:03d}.jpg", quality=95)
    gt = root / "2. Groundtruths"
    gt.mkdir()
    # the release's header, trailing space and all
    (gt / "a. IDRiD_Disease Grading_Training Labels.csv").write_text(
        "Image name,Retinopathy grade,Risk of macular edema \nIDRiD_001,2,0\nIDRiD_002,0,0\n")
    rows = idrid.load(root)
    assert [(r["id"], r["label"], r["truth"]["dr_grade"]) for r in rows] == [
        ("train/IDRiD_001", 1, 2.0), ("train/IDRiD_002", 0, 0.0)]
    r = CliRunner().invoke(app, ["evaluate", "-w", "diabetic_retinopathy", "--dataset", f"idrid:{root}", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n"] == 2
    (gt / "a. IDRiD_Disease Grading_Training Labels.csv").write_text("Image name,Retinopathy grade\nIDRiD_001,two\n")
    with pytest.raises(InputError, match=r"Training Labels\.csv:2: 'Retinopathy grade' must be 0-4"):
        idrid.load(root)


def test_jsrt_scr_ctr_from_heart_and_lung_masks(tmp_path, monkeypatch):
    root = tmp_path / "JSRT"
    (root / "All247images").mkdir(parents=True)
    chest, _ = render_chest(np.random.default_rng(3), 1024, 1024, 0.56)
    grey = chest if chest.ndim == 2 else chest[..., 0]
    grey = grey.astype(np.float32) / max(1.0, float(grey.max()))
    film = np.repeat(np.repeat((1.0 - grey) * 4095, 2, axis=0), 2, axis=1)  # film density, 2048 x 2048
    (root / "All247images" / "JPCLN001.IMG").write_bytes(film.astype(">u2").tobytes())
    masks = root / "scr" / "fold1" / "masks"
    for name, (c0, c1) in (("heart", (400, 799)), ("right lung", (200, 480)), ("left lung", (600, 899))):
        m = np.zeros((1024, 1024), np.uint8)
        m[300:700, c0:c1 + 1] = 255
        (masks / name).mkdir(parents=True)
        Image.fromarray(m).save(masks / name / "JPCLN001.gif")
    rows = jsrt.load(root, cache=tmp_path / "png")
    assert rows[0]["truth"]["ctr"] == pytest.approx(400 / 700) and rows[0]["label"] == 1
    png = np.asarray(Image.open(rows[0]["images"]["image"]))
    assert png.shape == (1024, 1024)
    (root / "All247images" / "JPCLN002.IMG").write_bytes(b"short")
    (masks / "heart" / "JPCLN002.gif").write_bytes((masks / "heart" / "JPCLN001.gif").read_bytes())
    for side in ("right lung", "left lung"):
        (masks / side / "JPCLN002.gif").write_bytes((masks / side / "JPCLN001.gif").read_bytes())
    with pytest.raises(InputError, match="a JSRT .IMG holds 8388608"):
        jsrt.load(root, cache=tmp_path / "png")
    (root / "All247images" / "JPCLN002.IMG").unlink()
    monkeypatch.setenv("DXGRAPH_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(app, ["evaluate", "-w", "cardiomegaly", "--dataset", f"jsrt:{root}", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["mae"]["ctr"]["n"] == 1


def _nii(path, data, spacing):
    img = nib.Nifti1Image(data, np.diag([*spacing, 1.0]))
    img.header.set_zooms(spacing)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))


def test_acdc_ef_from_lv_cavity_masks(tmp_path):
    root = tmp_path / "ACDC" / "training" / "patient001"
    root.mkdir(parents=True)
    ed, es, spacing, _ = render_lv_pair(np.random.default_rng(2), 30.0)
    (root / "Info.cfg").write_text("ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n")
    _nii(root / "patient001_frame01.nii.gz", ed, spacing)
    _nii(root / "patient001_frame12.nii.gz", es, spacing)
    voxel_ml = float(np.prod(spacing)) / 1000
    for frame, n_lv in (("01", 1000), ("12", 700)):
        gt = np.zeros(ed.shape, np.uint8)
        gt.flat[:n_lv] = 3
        gt.flat[n_lv:n_lv + 500] = 2  # myocardium is not cavity
        _nii(root / f"patient001_frame{frame}_gt.nii.gz", gt, spacing)
    rows = acdc.load(tmp_path / "ACDC")
    t = rows[0]["truth"]
    assert t["edv_ml"] == pytest.approx(1000 * voxel_ml, abs=1e-3) and t["ef"] == pytest.approx(30.0)
    assert rows[0]["label"] == 1 and set(rows[0]["images"]) == {"ed", "es"}
    r = CliRunner().invoke(app, ["evaluate", "-w", "hfref", "--dataset", f"acdc:{tmp_path / 'ACDC'}", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["mae"]["ef"]["n"] == 1


def test_bad_specs_and_mismatched_workflows_are_one_clear_line(tmp_path, refuge_dir):
    with pytest.raises(InputError, match="--dataset takes FORMAT:PATH"):
        parse_spec("refuge")
    with pytest.raises(InputError, match=r"unknown dataset format 'kaggle'; known: refuge, idrid, jsrt, acdc"):
        parse_spec(f"kaggle:{tmp_path}")
    with pytest.raises(InputError, match="does not exist"):
        parse_spec(f"refuge:{tmp_path / 'nope'}")
    with pytest.raises(InputError, match="no cases found"):
        load_dataset(f"acdc:{tmp_path}", "hfref", ["ed", "es"])
    with pytest.raises(InputError, match="use it with workflow 'glaucoma'"):
        load_dataset(f"refuge:{refuge_dir}", "hfref", ["ed", "es"])
    r = CliRunner().invoke(app, ["evaluate", "-w", "glaucoma"])
    assert r.exit_code == 2 and "--dataset" in r.output


def test_datasets_list_names_each_format():
    r = CliRunner().invoke(app, ["datasets", "list"], env={"COLUMNS": "250"})
    assert r.exit_code == 0
    for name in ("refuge", "idrid", "jsrt", "acdc"):
        assert name in r.stdout
