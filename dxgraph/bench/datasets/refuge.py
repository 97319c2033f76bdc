"""REFUGE (Orlando et al., Med Image Anal 2020) training layout.

As distributed (REFUGE challenge, Grand Challenge / Baidu AI Studio)::

    PATH/Training400/Glaucoma/g0001.jpg ...        PATH/Training400/Non-Glaucoma/n0001.jpg ...
    PATH/Annotation-Training400/Disc_Cup_Masks/Glaucoma/g0001.bmp
    PATH/Annotation-Training400/Disc_Cup_Masks/Non-Glaucoma/n0001.bmp

Masks: 0 optic cup, 128 disc rim, 255 background. The label is the folder (clinical
diagnosis); the true vCDR is the cup's vertical diameter over the disc's, from the masks,
as in the REFUGE paper's vCDR task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dxgraph.bench.datasets import DatasetFormat
from dxgraph.bench.datasets.masks import vertical_extent
from dxgraph.errors import InputError


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except OSError as exc:
        raise InputError(f"{path}: not a readable mask ({exc})") from None


def vcdr_from_mask(mask: np.ndarray) -> float | None:
    disc, cup = mask < 192, mask < 64  # tolerant of resampled or JPEG-saved masks
    d = vertical_extent(disc)
    return vertical_extent(cup) / d if d else None


def load(root: Path) -> list[dict[str, Any]]:
    rows = []
    masks = root / "Annotation-Training400" / "Disc_Cup_Masks"
    for folder, label in (("Glaucoma", 1), ("Non-Glaucoma", 0)):
        for img in sorted((root / "Training400" / folder).glob("*.jpg")):
            mask = masks / folder / f"{img.stem}.bmp"
            truth = {}
            if mask.is_file():
                v = vcdr_from_mask(_read(mask))
                if v is not None:
                    truth["vcdr"] = round(v, 6)
            rows.append({"id": img.stem, "images": {"image": str(img)}, "label": label, "truth": truth})
    return rows


FORMAT = DatasetFormat(
    name="refuge", title="REFUGE fundus photographs with optic disc/cup masks", workflow="glaucoma",
    truth="label from the Glaucoma / Non-Glaucoma folder; vcdr from the disc/cup mask",
    layout="Training400/{Glaucoma,Non-Glaucoma}/*.jpg + Annotation-Training400/Disc_Cup_Masks/{Glaucoma,Non-Glaucoma}/*.bmp",
    source="Orlando JI et al. REFUGE Challenge. Med Image Anal 2020;59:101570", load=load)
