"""The microaneurysm detector tells blood from pigment by colour, as an ophthalmologist does."""

from __future__ import annotations

import numpy as np

from dxgraph.tools.data import Image
from dxgraph.tools.measurement import lesion_count
from dxgraph.tools.segmentation import segment_microaneurysms


def _retina_with_dots(dots: list[tuple[float, float, tuple[float, float, float]]]) -> np.ndarray:
    rng = np.random.default_rng(0)
    size = 384
    yy, xx = np.mgrid[:size, :size]
    img = np.empty((size, size, 3), np.float32)
    img[:] = (200.0, 90.0, 40.0)  # an orange retina filling the frame
    for y, x, darken in dots:
        dot = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 2.0**2))[..., None]
        img = img * (1 - np.asarray(darken, np.float32) * dot)
    return np.clip(img + rng.normal(0, 1.0, img.shape), 0, 255)


BLOOD = (0.35, 0.55, 0.5)  # haemoglobin: dark in green, faint in red
PIGMENT = (0.6, 0.55, 0.5)  # melanin: as dark in red as in green


def test_a_red_dot_counts_and_a_pigment_clump_does_not():
    img = _retina_with_dots([(120, 120, BLOOD), (260, 260, PIGMENT)])
    assert lesion_count(segment_microaneurysms(Image(img))) == 1


def test_two_red_dots_both_count():
    img = _retina_with_dots([(120, 120, BLOOD), (260, 260, BLOOD)])
    assert lesion_count(segment_microaneurysms(Image(img))) == 2


def test_without_colour_both_dots_look_alike():
    # a grey (red-free) image carries no colour to tell them apart: both are candidates
    img = _retina_with_dots([(120, 120, BLOOD), (260, 260, PIGMENT)])[..., 1]
    assert lesion_count(segment_microaneurysms(Image(img))) == 2
