"""The overlay shows the measurement: a crop enlarged around a small disc, the diameters drawn."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from dxgraph.tools.data import Image, Mask
from dxgraph.tools.measurement_overlay import MIN_SIDE, render_measurement


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_a_15_px_disc_on_a_1411_px_photo_is_shown_large_with_its_diameters():
    shape = (1411, 1411)
    img = Image(np.full((*shape, 3), 120, np.float32))
    disc, cup = _disc(shape, 700, 300, 7), _disc(shape, 700, 300, 4)
    png = render_measurement(img, {"disc": Mask(disc), "cup": Mask(cup)})
    pic = np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB"))
    assert min(pic.shape[:2]) >= MIN_SIDE
    green = (pic == (0, 230, 0)).all(-1)
    # the disc (15 px across) now spans hundreds of pixels of the picture
    rows = np.flatnonzero(green.any(1))
    assert rows[-1] - rows[0] > 300
    # the vertical diameter is drawn: one column of the disc colour runs most of the disc's height
    assert green.sum(0).max() > 0.8 * (rows[-1] - rows[0])


def test_heart_and_thorax_widths_are_drawn():
    shape = (200, 200)
    heart = np.zeros(shape, bool)
    heart[90:130, 70:130] = True
    thorax = np.zeros(shape, bool)
    thorax[40:170, 20:180] = True
    png = render_measurement(Image(np.zeros(shape, np.float32)), {"heart": Mask(heart), "thorax": Mask(thorax)})
    pic = np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB"))
    red = (pic == (255, 40, 40)).all(-1)
    # a horizontal line the heart's width: one row of red much longer than the outline's sides
    assert red.sum(1).max() > 0.9 * (np.flatnonzero(red.any(0))[-1] - np.flatnonzero(red.any(0))[0])
