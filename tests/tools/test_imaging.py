"""load_image: the shipped samples, orientation, spacing, and every kind of bad input."""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import skimage.data
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from dxgraph.errors import InputError
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.imaging import SAMPLES, load, load_image, resolve_image_path, to_png_bytes
from dxgraph.tools.registry import FilePath, get_tool


def _png(path: Path, array: np.ndarray) -> Path:
    PILImage.fromarray(array).save(path)
    return path


# ---------------------------------------------------------------- samples


def test_retina_sample_loads_as_the_shipped_photograph():
    image = load("sample:retina")
    assert image.array.shape == (1411, 1411, 3)
    assert image.array.dtype == np.float32
    assert image.spacing is None
    assert image.is_color
    assert np.array_equal(image.array, skimage.data.retina().astype(np.float32))


def test_microaneurysms_sample_is_a_grey_2d_image():
    image = load("sample:microaneurysms")
    assert image.array.shape == skimage.data.microaneurysms().shape
    assert image.ndim_spatial == 2 and not image.is_color


def test_ct_sample_spacing_and_hounsfield_units_come_from_the_header():
    image = load("sample:ct")
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert image.array.shape == (128, 128)
    assert image.spacing == pytest.approx((0.661468, 0.661468))
    assert image.meta["modality"] == "CT"
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.allclose(image.array, hu)  # rows/cols as stored, rescaled


def test_mr_sample_spacing():
    image = load("sample:mr")
    assert image.array.shape == (64, 64)
    assert image.spacing == pytest.approx((0.3125, 0.3125))
    assert image.meta["window"] == [600.0, 1600.0]


def test_nifti_sample_is_a_volume_with_the_slice_axis_first():
    image = load("sample:nifti", expect="3d")
    raw = nib.load(resolve_image_path("sample:nifti")).get_fdata()
    assert raw.shape == (33, 41, 25)
    assert image.array.shape == (25, 41, 33)
    assert np.allclose(image.array, raw.transpose(2, 1, 0))
    assert image.spacing == (2.0, 2.0, 2.0)
    assert image.ndim_spatial == 3


def test_unknown_sample_lists_the_samples():
    with pytest.raises(InputError) as err:
        resolve_image_path("sample:brain")
    message = str(err.value)
    assert "'sample:brain'" in message
    assert all(f"sample:{name}" in message for name in SAMPLES)


def test_every_sample_resolves_to_a_real_file():
    for name in SAMPLES:
        assert resolve_image_path(f"sample:{name}").is_file(), name


# ---------------------------------------------------------------- orientation and spacing


def test_png_comes_out_rows_by_columns(tmp_path):
    array = (np.arange(30 * 50).reshape(30, 50) % 251).astype(np.uint8)
    image = load(_png(tmp_path / "a.png", array))
    assert image.array.shape == (30, 50)
    assert np.array_equal(image.array, array)


def test_rgba_png_drops_alpha_and_palette_png_is_expanded(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    assert load(_png(tmp_path / "a.png", rgba)).array.shape == (10, 20, 3)
    pal = PILImage.fromarray(rgba[..., :3]).convert("P")
    pal.save(tmp_path / "p.png")
    out = load(tmp_path / "p.png")
    assert out.array.shape == (10, 20, 3)
    assert out.array[0, 0, 0] == pytest.approx(200, abs=8)


def test_expect_grey_converts_colour_by_luminance(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 100
    image = load(_png(tmp_path / "c.png", rgb), expect="grey")
    assert image.array.shape == (8, 8)
    assert image.array[0, 0] == pytest.approx(58.7, abs=0.01)


def test_nifti_spacing_follows_the_axis_order(tmp_path):
    vol = np.zeros((4, 6, 8), np.float32)
    vol[1, 2, 3] = 1
    img = nib.Nifti1Image(vol, affine=np.diag([0.5, 0.7, 3.0, 1.0]))
    img.header.set_xyzt_units("mm")
    nib.save(img, tmp_path / "v.nii.gz")
    image = load(tmp_path / "v.nii.gz")
    assert image.array.shape == (8, 6, 4)
    assert image.array[3, 2, 1] == 1
    assert image.spacing == pytest.approx((3.0, 0.7, 0.5))


def test_nifti_in_metres_is_converted_to_mm(tmp_path):
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), affine=np.diag([0.001, 0.001, 0.002, 1.0]))
    img.header.set_xyzt_units("meter")
    nib.save(img, tmp_path / "m.nii")
    assert load(tmp_path / "m.nii").spacing == pytest.approx((2.0, 1.0, 1.0))


def test_dicom_without_spacing_has_none(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelSpacing
    ds.save_as(tmp_path / "nospacing.dcm")
    image = load(tmp_path / "nospacing.dcm")
    assert image.spacing is None
    assert "PixelSpacing" in image.meta["spacing_note"]


def test_multiframe_dicom_is_a_volume_with_slice_spacing():
    path = get_testdata_file("rtdose.dcm")
    ds = pydicom.dcmread(path)
    image = load(path)
    assert image.array.shape == (int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    assert image.ndim_spatial == 3
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    assert image.spacing == pytest.approx((abs(offsets[1] - offsets[0]), *map(float, ds.PixelSpacing)))


def test_load_image_is_a_registered_tool_with_a_file_input():
    spec = get_tool("load_image")
    assert spec.inputs.keys() == {"path"}
    assert spec.args.keys() == {"expect"}
    assert spec.check_arg("expect", "3d") is None
    assert spec.check_arg("expect", "4d") is not None


# ---------------------------------------------------------------- bad input


def _raises(path: Path | str, *words: str, expect: str = "any") -> str:
    with pytest.raises(InputError) as err:
        load_image(FilePath(str(path)), expect)
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.png", "does not exist")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    _raises(tmp_path / "empty.png", "empty")


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("patient notes, not an image\n")
    _raises(tmp_path / "notes.png", "PNG", "text")


def test_unsupported_format(tmp_path):
    (tmp_path / "x.bin").write_bytes(bytes(range(256)) * 4)
    _raises(tmp_path / "x.bin", "not a supported image")


def test_folder(tmp_path):
    _raises(tmp_path, "folder")


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(0)
    full = _png(tmp_path / "full.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).read_bytes()
    (tmp_path / "cut.png").write_bytes(full[: len(full) // 2])
    _raises(tmp_path / "cut.png", "truncated")


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[:300])
    _raises(tmp_path / "cut.jpg", "truncated")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_png_declaring_huge_dimensions_is_refused_before_decoding(tmp_path):
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)  # 3.6 Gpx grey
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b""))
    (tmp_path / "huge.png").write_bytes(data)
    _raises(tmp_path / "huge.png", "Mpx")


def test_png_just_over_the_pixel_limit(tmp_path):
    header = struct.pack(">IIBBBBB", 10001, 10000, 8, 0, 0, 0, 0)  # 100.01 Mpx: under PIL's own bomb limit
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b""))
    (tmp_path / "big.png").write_bytes(data)
    _raises(tmp_path / "big.png", "100 Mpx")


def test_nifti_declaring_a_huge_volume(tmp_path):
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((1024, 1024, 1024))
    hdr.set_data_dtype(np.uint8)
    raw = hdr.binaryblock + b"\0" * 4 + b"\0" * 1000  # the header lies about the data size
    (tmp_path / "huge.nii").write_bytes(raw)
    _raises(tmp_path / "huge.nii", "512^3")


def test_truncated_nifti(tmp_path):
    img = nib.Nifti1Image(np.ones((20, 20, 20), np.float32), np.eye(4))
    nib.save(img, tmp_path / "v.nii")
    data = (tmp_path / "v.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 2])
    _raises(tmp_path / "cut.nii", "NIfTI")


def test_gzip_that_is_not_nifti(tmp_path):
    (tmp_path / "x.nii.gz").write_bytes(gzip.compress(b"hello " * 100))
    _raises(tmp_path / "x.nii.gz", "not a NIfTI")


def test_truncated_dicom():
    path = get_testdata_file("MR_truncated.dcm")
    _raises(path, "DICOM", "truncated")


def test_dicom_without_pixels():
    _raises(get_testdata_file("rtplan.dcm"), "without an image")


def test_2d_where_3d_is_needed():
    message = _raises(resolve_image_path("sample:ct"), "needs a 3D volume", expect="3d")
    assert "grey 2D image (128x128)" in message


def test_3d_where_2d_is_needed():
    _raises(resolve_image_path("sample:nifti"), "needs a 2D image", expect="2d")


def test_grey_where_colour_is_needed():
    _raises(resolve_image_path("sample:microaneurysms"), "colour", expect="color")


def test_bad_expect_value():
    with pytest.raises(InputError, match="expect"):
        load_image(FilePath(str(resolve_image_path("sample:ct"))), "4d")


# ---------------------------------------------------------------- PNG rendering


def test_to_png_bytes_keeps_photograph_levels():
    image = load("sample:microaneurysms")
    out = np.asarray(PILImage.open(io.BytesIO(to_png_bytes(image))))
    assert np.array_equal(out, image.array.astype(np.uint8))


def test_to_png_bytes_windows_ct_and_takes_the_middle_slice():
    ct = np.asarray(PILImage.open(io.BytesIO(to_png_bytes(load("sample:ct")))))
    assert ct.dtype == np.uint8 and ct.shape == (128, 128)
    assert ct.min() == 0 and ct.max() == 255
    vol = np.zeros((5, 6, 7), np.float32)
    vol[2] = np.linspace(0, 1, 42).reshape(6, 7)
    mid = np.asarray(PILImage.open(io.BytesIO(to_png_bytes(Image(vol, (1, 1, 1), meta={"layout": "volume"})))))
    assert mid.shape == (6, 7) and mid[0, 0] < mid[-1, -1]


def test_to_png_bytes_colour_array():
    rgb = np.zeros((4, 5, 3), np.float32)
    rgb[..., 2] = 255
    out = np.asarray(PILImage.open(io.BytesIO(to_png_bytes(rgb))))
    assert out.shape == (4, 5, 3) and out[0, 0, 2] == 255 and out[0, 0, 0] == 0


# ---------------------------------------------------------------- overlays


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def test_overlay_draws_disc_green_and_cup_blue_on_their_edges(tmp_path):
    from dxgraph.tools.overlay import colour_for, render_overlay

    grey = np.full((120, 120), 100, np.float32)
    yy, xx = np.mgrid[:120, :120]
    r = np.hypot(yy - 60, xx - 60)
    masks = {"disc": Mask(r <= 40), "cup": Mask(r <= 15)}
    data = render_overlay(Image(grey), masks, tmp_path / "sub" / "o.png")
    assert (tmp_path / "sub" / "o.png").read_bytes() == data
    out = _decode(data)
    green, blue = colour_for("disc"), colour_for("cup")
    assert green == (0, 230, 0) and blue[2] == 255
    assert tuple(out[60, 100]) == green  # on the disc edge (radius 40)
    assert tuple(out[60, 75]) == blue  # on the cup edge (radius 15)
    assert tuple(out[60, 88]) == (100, 100, 100)  # rim interior untouched


def test_overlay_of_a_volume_uses_the_middle_slice():
    from dxgraph.tools.overlay import render_overlay

    vol = np.zeros((5, 64, 64), np.float32)
    vol[:, 20:40, 20:40] = 1
    image = Image(vol, (1.0, 1.0, 1.0), meta={"layout": "volume"})
    middle = np.zeros(vol.shape, bool)
    middle[2, 20:40, 20:40] = True
    first = np.zeros(vol.shape, bool)
    first[0, 20:40, 20:40] = True
    drawn = _decode(render_overlay(image, {"lv": Mask(middle)}))
    plain = _decode(render_overlay(image, {"lv": Mask(first)}))
    red = np.all(drawn == (255, 40, 40), axis=-1)
    assert red[20, 20:40].all() and not red[30, 30]
    assert np.all(plain == (255, 40, 40), axis=-1)[16:].sum() == 0  # only the legend, top left


def test_overlay_rings_tiny_lesions():
    from dxgraph.tools.overlay import render_overlay

    mask = np.zeros((80, 80), bool)
    mask[40, 40] = True
    out = _decode(render_overlay(Image(np.zeros((80, 80), np.float32)), {"lesions": Mask(mask)}))
    cyan = np.all(out == (0, 255, 255), axis=-1)
    assert not cyan[40, 40] and cyan[40, 40 - 4 : 40 + 5].any() and cyan.sum() > 8


def test_overlay_rejects_a_mask_from_another_image():
    from dxgraph.errors import ToolError
    from dxgraph.tools.overlay import render_overlay

    with pytest.raises(ToolError, match="'disc'"):
        render_overlay(Image(np.zeros((10, 10), np.float32)), {"disc": Mask(np.zeros((12, 12), bool))})
