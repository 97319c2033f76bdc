"""The Python API ``dxgraph.agents.diagnose``: how images are passed, and what is refused before a run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dxgraph.errors import DxGraphError, InputError
from dxgraph.tools.imaging import resolve_image_path
from dxgraph.workflows.loader import find_workflow
from dxgraph.agents.diagnose import bind_images, check_images, diagnose

DXGRAPH = str(Path(sys.executable).with_name("dxgraph"))


@pytest.mark.parametrize("image", ["sample:microaneurysms", Path(resolve_image_path("sample:microaneurysms"))])
def test_a_single_str_or_path_is_one_image(image):
    seen = []
    dx = diagnose("diabetic_retinopathy", image, on_indicator=seen.append)
    ma = next(i for i in dx.indicators if i.id == "microaneurysms")
    assert ma.status == "ok" and ma.value >= 1, ma.error
    assert dx.outcome.startswith("diabetic retinopathy present")
    assert {r.id for r in seen} == {"microaneurysms", "haemorrhages_exudates"}


@pytest.mark.parametrize("images", [
    "{missing}", ["{missing}"], {"image": "{missing}"},
])
def test_a_missing_file_is_an_error_before_the_graph_runs(tmp_path, images):
    missing = str(tmp_path / "retina.png")
    fill = (lambda v: v.format(missing=missing))
    images = ({k: fill(v) for k, v in images.items()} if isinstance(images, dict)
              else [fill(v) for v in images] if isinstance(images, list) else fill(images))
    seen = []
    with pytest.raises(InputError) as err:
        diagnose("diabetic_retinopathy", images, on_indicator=seen.append)
    assert isinstance(err.value, DxGraphError)
    msg = str(err.value)
    assert f"image {missing!r} (input 'image' of workflow 'diabetic_retinopathy') does not exist" in msg
    assert seen == []  # no indicator ran, so no "indeterminate" diagnosis


def test_bind_images_still_counts_images():
    wf = find_workflow("hfref")[0]
    with pytest.raises(InputError, match=r"needs 2 image\(s\) \(ed, es\), got 1"):
        bind_images(wf, "sample:nifti")


def test_identical_ed_and_es_are_refused_even_under_two_names(tmp_path):
    nifti = resolve_image_path("sample:nifti")
    copy = shutil.copyfile(nifti, tmp_path / "es.nii")
    with pytest.raises(InputError) as err:
        check_images("hfref", [str(nifti), str(copy)])
    msg = str(err.value)
    assert msg.startswith("ED and ES are the same image (identical content") and str(copy) in msg, msg


def test_cli_refuses_the_same_volume_as_ed_and_es():
    r = subprocess.run([DXGRAPH, "diagnose", "-w", "hfref", "-i", "sample:nifti", "-i", "sample:nifti"],
                       capture_output=True, text=True, timeout=180)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "ED and ES are the same image" in r.stderr, r.stderr
    assert "HFrEF" not in r.stdout
