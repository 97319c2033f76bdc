"""Inputs that load fine but are not what the workflow measures: a CT slice or noise given to
the fundus workflows, a fundus crop or an MR slice given to the chest radiograph workflow, the
same volume given as end-diastole and end-systole."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from dxgraph.errors import InputError
from dxgraph.tools.imaging import display_array, load, load_image, resolve_image_path
from dxgraph.phantoms import generate
from dxgraph.tools.registry import FilePath
from dxgraph.agents.diagnose import check_images, diagnose

DXGRAPH = str(Path(sys.executable).with_name("dxgraph"))
BUILTIN = Path(__file__).resolve().parents[2] / "dxgraph" / "workflows" / "builtin"


def _diagnose(workflow: str, image: str) -> subprocess.CompletedProcess:
    return subprocess.run([DXGRAPH, "diagnose", "-w", workflow, "-i", image], capture_output=True, text=True,
                          timeout=180)


def _cli_refused(workflow: str, image: str, *words: str) -> str:
    r = _diagnose(workflow, image)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "outcome" not in r.stdout, (r.stdout, r.stderr)
    for word in words:
        assert word in r.stderr, r.stderr
    return r.stderr


def _noise(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    return _png(tmp_path / "noise.png", rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))


def _png(path: Path, array: np.ndarray) -> str:
    PILImage.fromarray(array).save(path)
    return str(path)


def _refused(path: str, *words: str) -> str:
    with pytest.raises(InputError) as err:
        load_image(FilePath(path), "fundus")
    msg = str(err.value)
    assert "\n" not in msg and ("not a fundus photograph" in msg or "does not look like a fundus" in msg), msg
    for word in words:
        assert word in msg, msg
    return msg


# ---------------------------------------------------------------- fundus


@pytest.fixture(scope="module")
def retina() -> np.ndarray:
    return load("sample:retina").array.astype(np.uint8)


def test_fundus_accepts_colour_green_channel_clipped_field_and_crop(tmp_path, retina):
    green = retina[..., 1]
    paths = [
        str(resolve_image_path("sample:retina")),
        _png(tmp_path / "green.png", green),
        _png(tmp_path / "clipped.png", green[150:-150]),  # cameras that clip the round field top and bottom
        str(resolve_image_path("sample:microaneurysms")),  # a grey crop from inside the field: no surround
    ]
    for path in paths:
        image = load_image(FilePath(path), "fundus")
        assert image.array.ndim in (2, 3) and image.array.shape[0] > 50
    assert check_images("diabetic_retinopathy", [paths[1]]) == {"image": paths[1]}


def test_fundus_accepts_the_dr_phantoms(tmp_path):
    rows = list(csv.DictReader(open(generate("diabetic_retinopathy", 4, 11, tmp_path))))
    for row in rows:
        assert check_images("diabetic_retinopathy", [str(tmp_path / row["image"])])


def test_fundus_refuses_radiology_dicoms_by_modality():
    _refused(str(resolve_image_path("sample:ct")), "DICOM of modality 'CT'")
    _refused(str(resolve_image_path("sample:mr")), "DICOM of modality 'MR'")


def test_fundus_refuses_a_ct_slice_without_its_header(tmp_path):
    ct = display_array(load("sample:ct"))
    _refused(_png(tmp_path / "ct.png", ct), "not a round field of view")
    _refused(_png(tmp_path / "ct_rgb.png", np.stack([ct] * 3, -1)), "grey image")  # grey saved as RGB
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Modality = "OP"  # a wrong header does not make a CT a fundus
    ds.save_as(tmp_path / "op.dcm")
    _refused(str(tmp_path / "op.dcm"), "not a round field of view")


def test_fundus_refuses_a_disc_ringed_by_bright_bone_and_a_nifti_slice(tmp_path):
    yy, xx = np.mgrid[:256, :256]
    r = np.hypot(yy - 128, xx - 128)
    head = np.where(r < 100, 60, 0) + np.where((r >= 90) & (r < 100), 190, 0)
    _refused(_png(tmp_path / "head.png", head.astype(np.uint8)), "bright rim")
    nib.save(nib.Nifti1Image(head.astype(np.float32), np.eye(4)), tmp_path / "slice.nii")
    _refused(str(tmp_path / "slice.nii"), "NIfTI")


def test_cli_refuses_the_ct_sample_for_diabetic_retinopathy_in_one_line():
    r = subprocess.run([DXGRAPH, "diagnose", "-w", "diabetic_retinopathy", "-i", "sample:ct"],
                       capture_output=True, text=True, timeout=180)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "modality 'CT'" in r.stderr, r.stderr
    assert "retinopathy present" not in r.stdout and "no apparent" not in r.stdout


def test_fundus_refuses_colour_noise_naming_the_channel_means(tmp_path):
    msg = _refused(_noise(tmp_path), "not red-dominant", "mean red 12")
    assert "green 12" in msg and "blue 12" in msg, msg
    _cli_refused("diabetic_retinopathy", _noise(tmp_path), "not red-dominant")


def test_fundus_colour_check_passes_the_retina_and_glaucoma_phantoms(tmp_path, retina):
    load_image(FilePath(_png(tmp_path / "retina.png", retina)), "fundus")
    rows = list(csv.DictReader(open(generate("glaucoma", 3, 12, tmp_path, scale=0.5))))
    for row in rows:
        assert load_image(FilePath(str(tmp_path / row["image"])), "fundus").array.ndim == 3


def test_cli_accepts_the_fundus_samples_for_diabetic_retinopathy():
    for sample in ("sample:retina", "sample:microaneurysms"):
        r = _diagnose("diabetic_retinopathy", sample)
        assert r.returncode == 0 and "outcome:" in r.stdout, (sample, r.stderr)


def test_glaucoma_with_the_fundus_expectation_refuses_noise_and_takes_the_retina(tmp_path):
    # glaucoma.yaml loads with `expect: color`; with `expect: fundus` its input slot's
    # `dims: color` still asks for colour, and noise is refused before any step runs.
    text = (BUILTIN / "glaucoma.yaml").read_text()
    (tmp_path / "glaucoma.yaml").write_text(text.replace("expect: color}", "expect: fundus}"))
    wf = str(tmp_path / "glaucoma.yaml")
    _cli_refused(wf, _noise(tmp_path), "not red-dominant")
    _cli_refused(wf, str(resolve_image_path("sample:microaneurysms")), "colour photograph (RGB)")
    assert check_images(wf, ["sample:retina"])


# ---------------------------------------------------------------- chest radiograph


def test_cli_refuses_a_fundus_crop_dicoms_and_colour_for_cardiomegaly(tmp_path):
    _cli_refused("cardiomegaly", "sample:microaneurysms", "102x102 px, too small to be a chest radiograph")
    _cli_refused("cardiomegaly", "sample:ct", "DICOM of modality 'CT', not a chest radiograph")
    _cli_refused("cardiomegaly", "sample:mr", "DICOM of modality 'MR'")
    _cli_refused("cardiomegaly", "sample:retina", "colour picture (1411x1411x3), not a chest radiograph")
    _cli_refused("cardiomegaly", _noise(tmp_path), "colour picture")


def test_cli_accepts_the_chest_phantoms_also_as_jpeg_and_grey_saved_as_rgb(tmp_path):
    rows = list(csv.DictReader(open(generate("cardiomegaly", 2, 5, tmp_path))))
    first = tmp_path / rows[0]["image"]
    grey = np.asarray(PILImage.open(first))
    PILImage.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "rgb.jpg", quality=75)  # chroma noise
    for path in [str(tmp_path / r["image"]) for r in rows] + [str(tmp_path / "rgb.jpg")]:
        r = _diagnose("cardiomegaly", path)
        assert r.returncode == 0 and "outcome: " in r.stdout and "score" in r.stdout, (path, r.stderr)
    image = load_image(FilePath(str(tmp_path / "rgb.jpg")), "chest_radiograph")
    assert image.array.shape == grey.shape and "converted" in image.meta


def test_chest_takes_radiography_modalities_and_refuses_others(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # 128x128: the smallest side allowed
    for modality, ok in (("DX", True), ("CR", True), ("OT", True), ("US", False), ("MG", False)):
        ds.Modality = modality
        ds.save_as(tmp_path / f"{modality}.dcm")
        if ok:
            assert load_image(FilePath(str(tmp_path / f"{modality}.dcm")), "chest_radiograph").array.shape == (128, 128)
        else:
            with pytest.raises(InputError, match=f"modality '{modality}', not a chest radiograph"):
                load_image(FilePath(str(tmp_path / f"{modality}.dcm")), "chest_radiograph")
    with pytest.raises(InputError, match="blank"):
        load_image(FilePath(_png(tmp_path / "blank.png", np.full((200, 200), 90, np.uint8))), "chest_radiograph")


# ---------------------------------------------------------------- LV volumes


def test_same_volume_as_ed_and_es_makes_lvef_unavailable_naming_the_volumes():
    # The API does not pre-check digests (check_images does, for people); the tool still refuses.
    dx = diagnose("hfref", ["sample:nifti", "sample:nifti"])
    lvef = dx.indicators[0]
    assert lvef.status == "unavailable" and lvef.passed is None
    assert "EDV 8.1 mL is outside the plausible adult left-ventricular range 20-500 mL" in lvef.error
    assert dx.outcome.startswith("indeterminate")


def test_hfref_phantom_volumes_stay_in_the_plausible_range(tmp_path):
    row = next(csv.DictReader(open(generate("hfref", 1, 21, tmp_path))))
    dx = diagnose("hfref", [str(tmp_path / row["image_ed"]), str(tmp_path / row["image_es"])])
    lvef = dx.indicators[0]
    assert lvef.status == "ok", lvef.error
    assert lvef.value == pytest.approx(float(row["ef"]), abs=3)
