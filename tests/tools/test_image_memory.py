"""Image memory is estimated from the header and bounded before any pixel is decoded."""

import tracemalloc

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from dxgraph.errors import InputError
from dxgraph.tools.imaging import load

BUDGET_MB = 16


@pytest.fixture(autouse=True)
def _small_budget(monkeypatch):
    monkeypatch.setenv("DXGRAPH_IMAGE_MEMORY_MB", str(BUDGET_MB))


def _photo(path, size, fmt):
    rng = np.random.default_rng(0)
    PILImage.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path, fmt)
    return path


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_a_photograph_over_the_budget_is_downscaled_with_a_note(tmp_path, fmt, suffix):
    path = _photo(tmp_path / f"big{suffix}", (1200, 1000), fmt)  # 3.6 M values: ~43 MB float32 x 3
    tracemalloc.start()
    try:
        img = load(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert img.array.shape[:2] in ((600, 500), (400, 334)) and "1/" in img.meta["downscaled"]
    assert peak < BUDGET_MB * 2**20, peak


def test_a_photograph_within_the_budget_is_kept_whole(tmp_path):
    img = load(str(_photo(tmp_path / "small.png", (400, 300), "PNG")))
    assert img.array.shape == (400, 300, 3) and "downscaled" not in img.meta


def test_a_volume_over_the_budget_is_refused_before_decoding(tmp_path):
    path = tmp_path / "v.nii"
    nib.save(nib.Nifti1Image(np.zeros((160, 160, 160), np.uint8), np.eye(4)), str(path))
    with pytest.raises(InputError, match="would take about 47 MB of memory to load, over the 16 MB budget"):
        load(str(path))


def test_a_bad_budget_setting_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DXGRAPH_IMAGE_MEMORY_MB", "lots")
    with pytest.raises(InputError, match="DXGRAPH_IMAGE_MEMORY_MB"):
        load(str(_photo(tmp_path / "small.png", (40, 30), "PNG")))
