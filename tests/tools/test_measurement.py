"""Measurements on synthetic masks whose answers are known exactly (SYNTHETIC shapes only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dxgraph.errors import ToolError
from dxgraph.tools.data import Mask
from dxgraph.tools.measurement import (
    cardiothoracic_ratio,
    ejection_fraction,
    lesion_count,
    mask_area,
    mask_volume,
    rim_to_disc_ratio,
    vertical_cup_to_disc_ratio,
)
from dxgraph.tools.registry import get_tool


def disc(shape, centre, radius, spacing=None) -> Mask:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return Mask((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2, spacing)


def ellipse(shape, centre, ry, rx, spacing=None) -> Mask:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return Mask(((yy - centre[0]) / ry) ** 2 + ((xx - centre[1]) / rx) ** 2 <= 1, spacing)


def box(shape, r0, r1, c0, c1, spacing=None) -> Mask:
    a = np.zeros(shape, bool)
    a[r0:r1, c0:c1] = True
    return Mask(a, spacing)


# ---------------------------------------------------------------- vertical CDR


def test_vcdr_disc_100_cup_50_is_one_half():
    d = disc((300, 300), (150, 150), 100)
    c = disc((300, 300), (150, 150), 50)
    assert vertical_cup_to_disc_ratio(d, c) == pytest.approx(101 / 201)
    assert vertical_cup_to_disc_ratio(d, c) == pytest.approx(0.5, abs=0.005)


def test_vcdr_is_vertical_only():
    d = box((100, 100), 10, 90, 10, 90)  # 80 rows
    c = box((100, 100), 40, 60, 15, 85)  # 20 rows, wide
    assert vertical_cup_to_disc_ratio(d, c) == pytest.approx(0.25)


def test_vcdr_empty_cup_is_zero_and_empty_disc_is_an_error():
    d = disc((50, 50), (25, 25), 10)
    empty = Mask(np.zeros((50, 50), bool))
    assert vertical_cup_to_disc_ratio(d, empty) == 0.0
    with pytest.raises(ToolError, match="disc mask is empty"):
        vertical_cup_to_disc_ratio(empty, d)


def test_vcdr_rejects_masks_of_different_shapes():
    with pytest.raises(ToolError, match="different shapes"):
        vertical_cup_to_disc_ratio(disc((50, 50), (25, 25), 10), disc((60, 60), (25, 25), 5))


# ---------------------------------------------------------------- rim-to-disc ratio


def test_rdr_concentric_rim_is_half_the_radius_over_the_diameter():
    d = disc((300, 300), (150, 150), 100)
    c = disc((300, 300), (150, 150), 50)
    assert rim_to_disc_ratio(d, c) == pytest.approx(50 / 200, abs=0.006)


def test_rdr_finds_the_narrow_side_of_an_offset_cup():
    d = disc((300, 300), (150, 150), 100)
    c = disc((300, 300), (150, 180), 50)  # cup shifted 30 px towards one side: rim 20 px there
    assert rim_to_disc_ratio(d, c) == pytest.approx(20 / 200, abs=0.006)


def test_rdr_no_cup_is_full_radius_and_cup_filling_disc_is_zero():
    d = disc((300, 300), (150, 150), 100)
    assert rim_to_disc_ratio(d, Mask(np.zeros_like(d.array))) == pytest.approx(0.5, abs=0.006)
    assert rim_to_disc_ratio(d, d) == 0.0


def test_rdr_uses_spacing_for_anisotropic_pixels():
    # A physically circular disc (radius 10 mm) and cup (5 mm) on 0.1 x 0.2 mm pixels.
    d = ellipse((300, 200), (150, 100), 100, 50, spacing=(0.1, 0.2))
    c = ellipse((300, 200), (150, 100), 50, 25, spacing=(0.1, 0.2))
    assert rim_to_disc_ratio(d, c) == pytest.approx(0.25, abs=0.01)
    # Ignoring spacing the rim would be measured in pixels: narrowest 25 px over 201.
    flat = rim_to_disc_ratio(Mask(d.array), Mask(c.array))
    assert flat == pytest.approx(25 / 200, abs=0.006)


def test_rdr_empty_disc_is_an_error():
    empty = Mask(np.zeros((20, 20), bool))
    with pytest.raises(ToolError, match="disc mask is empty"):
        rim_to_disc_ratio(empty, empty)


# ---------------------------------------------------------------- cardiothoracic ratio


def test_ctr_is_widest_heart_over_widest_thorax():
    thorax = ellipse((400, 400), (200, 200), 150, 150)  # 301 px wide
    heart = ellipse((400, 400), (260, 220), 50, 75)  # 151 px wide
    assert cardiothoracic_ratio(heart, thorax) == pytest.approx(151 / 301)


def test_ctr_uses_the_horizontal_projection_of_the_heart():
    # Right and left cardiac borders at different levels still add up (Danzer).
    heart = np.zeros((100, 200), bool)
    heart[40:50, 60:100] = True
    heart[45:60, 90:140] = True
    thorax = box((100, 200), 10, 90, 20, 180)
    assert cardiothoracic_ratio(Mask(heart), thorax) == pytest.approx(80 / 160)


def test_ctr_empty_masks_are_errors():
    t = box((50, 50), 5, 45, 5, 45)
    empty = Mask(np.zeros((50, 50), bool))
    with pytest.raises(ToolError, match="heart mask is empty"):
        cardiothoracic_ratio(empty, t)
    with pytest.raises(ToolError, match="thorax mask is empty"):
        cardiothoracic_ratio(t, empty)


# ---------------------------------------------------------------- area and volume


def test_area_in_mm2_with_spacing_and_px2_without():
    m = box((50, 50), 0, 10, 0, 20, spacing=(0.5, 0.25))
    assert mask_area(m) == (pytest.approx(200 * 0.125), "mm2")
    assert tuple(mask_area(Mask(m.array))) == (200.0, "px2")


def test_area_of_a_3d_mask_is_an_error():
    with pytest.raises(ToolError, match="2D"):
        mask_area(Mask(np.ones((2, 3, 4), bool)))


def test_volume_in_ml():
    a = np.zeros((20, 20, 20), bool)
    a[:10, :10, :10] = True  # 1000 voxels of 2 x 1 x 1.5 mm = 3 mL
    assert mask_volume(Mask(a, (2.0, 1.0, 1.5))) == pytest.approx(3.0)


def test_volume_needs_3d_and_spacing():
    with pytest.raises(ToolError, match="no voxel spacing"):
        mask_volume(Mask(np.ones((4, 4, 4), bool)))
    with pytest.raises(ToolError, match="3D mask"):
        mask_volume(Mask(np.ones((4, 4), bool), (1.0, 1.0)))


def test_dicom_without_spacing_gives_pixels_for_area_and_no_volume(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    from dxgraph.tools.imaging import load

    for name in ("CT_small.dcm", "rtdose.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name))
        del ds.PixelSpacing
        ds.save_as(tmp_path / name)
    slice_ = load(tmp_path / "CT_small.dcm")
    assert slice_.spacing is None
    assert mask_area(Mask(slice_.array > 0, slice_.spacing)).area_unit == "px2"
    volume = load(tmp_path / "rtdose.dcm", expect="3d")
    assert volume.spacing is None
    with pytest.raises(ToolError, match="no voxel spacing"):
        mask_volume(Mask(volume.array > 0, volume.spacing))


# ---------------------------------------------------------------- ejection fraction


def test_ejection_fraction_known_values():
    assert ejection_fraction(150.0, 60.0) == pytest.approx(60.0)
    assert ejection_fraction(200.0, 140.0) == pytest.approx(30.0)
    assert ejection_fraction(20.0, 19.9) == pytest.approx(0.5)  # both ends of the range are allowed
    assert ejection_fraction(500.0, 1.0) == pytest.approx(99.8)


@pytest.mark.parametrize("edv, esv, words", [
    (0.0, 0.0, "EDV 0.0 mL is outside the plausible adult left-ventricular range 20-500 mL"),
    (-5.0, 1.0, "EDV -5.0 mL is outside"),
    (8.0, 8.0, "EDV 8.0 mL is outside"),  # the same small MR volume given as ED and ES
    (19.9, 5.0, "outside"),
    (612.0, 300.0, "EDV 612.0 mL is outside"),
    (100.0, 100.0, "ESV 100.0 mL is not below EDV 100.0 mL, so the EF would be 0 %"),
    (100.0, 120.0, "swapped"),
    (100.0, -1.0, "ESV -1.0 mL leaves no cavity"),
    (100.0, 0.0, "ESV 0.0 mL leaves no cavity"),
    (math.nan, 10.0, "finite"),
])
def test_ejection_fraction_rejects_impossible_volumes(edv, esv, words):
    with pytest.raises(ToolError, match=words):
        ejection_fraction(edv, esv)


# ---------------------------------------------------------------- lesion count


def test_lesion_count_8_connectivity_and_minimum_area():
    a = np.zeros((30, 30), bool)
    a[2:4, 2:4] = True  # 4 px
    a[4, 4] = True  # diagonal neighbour: same lesion under 8-connectivity
    a[10:13, 10:13] = True  # 9 px
    a[20, 20] = True  # single pixel: noise at the default minimum
    a[25, 5:7] = True  # 2 px
    assert lesion_count(Mask(a)) == 3
    assert lesion_count(Mask(a), min_area_px=1) == 4
    assert lesion_count(Mask(a), min_area_px=5) == 2
    assert lesion_count(Mask(np.zeros((5, 5), bool))) == 0


def test_lesion_count_rejects_a_zero_minimum():
    with pytest.raises(ToolError, match="min_area_px"):
        lesion_count(Mask(np.zeros((5, 5), bool)), min_area_px=0)


# ---------------------------------------------------------------- registration


@pytest.mark.parametrize("name, outputs, unit", [
    ("vertical_cup_to_disc_ratio", ("vcdr",), "ratio"),
    ("rim_to_disc_ratio", ("rdr",), "ratio"),
    ("cardiothoracic_ratio", ("ctr",), "ratio"),
    ("mask_area", ("area", "area_unit"), None),
    ("mask_volume", ("volume_ml",), "mL"),
    ("ejection_fraction", ("ef",), "%"),
    ("lesion_count", ("count",), "lesions"),
])
def test_tools_are_registered_with_named_outputs_and_units(name, outputs, unit):
    spec = get_tool(name)
    assert spec.outputs == outputs
    if unit:
        assert spec.units[outputs[0]] == unit
    assert spec.description
