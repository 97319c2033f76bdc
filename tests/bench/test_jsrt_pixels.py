"""JSRT .IMG pixels: 2048 x 2048, 12 bits in big-endian 16-bit words, film density (larger = darker).

Converters published with the data set's users read ``>u2`` and invert (``1 - image``), since
the values are optical density: air in the lungs exposes the film most. After conversion the
lungs must be dark and the mediastinum bright, as on any radiograph viewer.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dxgraph.bench.datasets.jsrt import SIDE, convert_img
from dxgraph.errors import InputError


def _film(tmp_path):
    film = np.full((SIDE, SIDE), 4000, np.uint16)  # outside the body: fully exposed, darkest
    film[300:1800, 200:1850] = 700  # body: soft tissue and bone absorb, little exposure
    film[500:1600, 350:900] = 3600  # right lung: air, dark
    film[500:1600, 1150:1700] = 3600  # left lung
    path = tmp_path / "JPCLN001.IMG"
    path.write_bytes(film.astype(">u2").tobytes())
    return path


def test_img_reads_big_endian_film_density_as_a_radiograph(tmp_path):
    png = np.asarray(Image.open(convert_img(_film(tmp_path), tmp_path / "out.png")))
    assert png.shape == (SIDE // 2, SIDE // 2) and png.dtype == np.uint8
    lungs = np.concatenate([png[260:790, 185:440].ravel(), png[260:790, 585:840].ravel()])
    mediastinum = png[260:790, 470:560]
    assert lungs.mean() < 40 and mediastinum.mean() > 200  # lungs dark, as a radiograph shows them
    assert png[50, 50] < lungs.mean() + 5  # outside the body darkest of all
    # read little-endian, 700 (0x02BC) would be 0xBC02 and every pixel would clip to black
    assert png.std() > 50


def test_a_file_of_the_wrong_size_is_one_clear_error(tmp_path):
    bad = tmp_path / "x.IMG"
    bad.write_bytes(b"\0" * (SIDE * SIDE))  # 8-bit, not 16-bit
    with pytest.raises(InputError, match="a JSRT .IMG holds 8388608"):
        convert_img(bad, tmp_path / "x.png")
