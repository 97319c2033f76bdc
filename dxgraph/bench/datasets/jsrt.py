"""JSRT chest radiographs (Shiraishi et al., AJR 2000) with the SCR masks (van Ginneken et al.,
Med Image Anal 2006).

As distributed (JSRT database; SCR from the Image Sciences Institute)::

    PATH/All247images/JPCLN001.IMG ...      (2048 x 2048, 12-bit, big-endian, 0.175 mm)
    PATH/scr/fold1/masks/heart/JPCLN001.gif  (and left lung/, right lung/; fold2 likewise;
                                              1024 x 1024, the images halved)

``.IMG`` is raw: each one is converted once to an 8-bit PNG at the masks' 1024 x 1024 under
``DXGRAPH_HOME/datasets/jsrt/`` (JSRT stores film density, larger = darker, so it is
inverted to the usual radiograph look). True CTR: the heart mask's widest row over the
widest row of the two lung masks together (outer edge to outer edge), as the SCR-based CTR
studies measure it; the label is CTR > 0.5 (JSRT carries no cardiomegaly label).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dxgraph.bench.datasets import DatasetFormat
from dxgraph.bench.datasets.masks import max_width, thoracic_width
from dxgraph.errors import InputError

SIDE = 2048


def _mask(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L")) > 127
    except OSError as exc:
        raise InputError(f"{path}: not a readable mask ({exc})") from None


def convert_img(src: Path, dst: Path) -> Path:
    """Raw JSRT ``.IMG`` -> 8-bit PNG at half size, inverted to radiograph contrast."""
    from PIL import Image

    raw = src.read_bytes()
    if len(raw) != SIDE * SIDE * 2:
        raise InputError(f"{src}: {len(raw)} bytes, a JSRT .IMG holds {SIDE * SIDE * 2} (2048 x 2048, 16-bit)")
    px = np.frombuffer(raw, dtype=">u2").reshape(SIDE, SIDE).astype(np.float32)
    px = px.reshape(SIDE // 2, 2, SIDE // 2, 2).mean(axis=(1, 3))
    img = (255.0 * (1.0 - np.clip(px, 0, 4095) / 4095.0)).astype(np.uint8)
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(dst)
    return dst


def ctr_from_masks(heart: np.ndarray, right: np.ndarray, left: np.ndarray) -> float | None:
    t = thoracic_width(right, left)
    return max_width(heart) / t if t else None


def load(root: Path, cache: Path | None = None) -> list[dict[str, Any]]:
    if cache is None:
        from dxgraph.config import load_settings

        cache = load_settings().home / "datasets" / "jsrt"
    hearts = {p.stem: p for p in root.glob("**/masks/heart/*.gif")}
    rows = []
    for src in sorted(root.glob("**/*.IMG")):
        heart = hearts.get(src.stem)
        if heart is None:
            continue  # no SCR mask, no truth: not evaluable
        lungs = heart.parent.parent
        ctr = ctr_from_masks(_mask(heart), _mask(lungs / "right lung" / heart.name), _mask(lungs / "left lung" / heart.name))
        if ctr is None:
            continue
        png = cache / f"{src.stem}.png"
        if not png.is_file() or png.stat().st_mtime < src.stat().st_mtime:
            convert_img(src, png)
        rows.append({"id": src.stem, "images": {"image": str(png)}, "label": int(ctr > 0.5),
                     "truth": {"ctr": round(ctr, 6)}})
    return rows


FORMAT = DatasetFormat(
    name="jsrt", title="JSRT chest radiographs with SCR lung and heart masks", workflow="cardiomegaly",
    truth="ctr from the SCR heart and lung masks; label = ctr > 0.5",
    layout="**/*.IMG (JSRT raw) + **/masks/{heart,left lung,right lung}/*.gif (SCR)",
    source="Shiraishi J et al. AJR 2000;174:71-74; van Ginneken B et al. Med Image Anal 2006;10:19-40", load=load)
