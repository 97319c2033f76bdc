"""Flat-field correction before the disc/cup split: a lighting ramp must not move the vCDR."""

from __future__ import annotations

import numpy as np
import pytest

from dxgraph.tools.data import Image
from dxgraph.tools.measurement import vertical_cup_to_disc_ratio
from dxgraph.tools.segmentation import segment_optic_disc_cup


def _vcdr(rgb: np.ndarray) -> float:
    out = segment_optic_disc_cup(Image(rgb.astype(np.float32)))
    return float(vertical_cup_to_disc_ratio(out.disc, out.cup))


def _ramp(rgb: np.ndarray, amplitude: float) -> np.ndarray:
    # darker on the left, brighter on the right, as a lamp off centre gives
    w = rgb.shape[1]
    gain = 1.0 - amplitude / 2 + amplitude * np.linspace(0, 1, w)[None, :, None]
    return np.clip(np.rint(rgb.astype(np.float32) * gain), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("amplitude", [0.3, 0.6])
def test_an_illumination_ramp_on_the_real_photo_leaves_the_vcdr(amplitude):
    from skimage import data

    rgb = data.retina()
    # before the correction the ramp pulled the temporal rim into the cup: 0.40 -> 0.54 / 0.49
    assert abs(_vcdr(_ramp(rgb, amplitude)) - _vcdr(rgb)) <= 0.03
