"""Contour overlays: what a segmenter found, drawn on the image for people and VLMs.

A clinician should be able to check every number against the picture it came from, so
each quantitative indicator can leave an overlay: mask outlines in fixed colours (disc
green, cup blue, heart red, thorax yellow...) with a legend. Volumes are shown by their
middle slice. Tiny masks such as microaneurysms get rings around them, since their own
outline would be a dot.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from dxgraph.errors import ToolError
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.imaging import display_array

__all__ = ["render_overlay", "colour_for"]

_NAMED: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("disc", (0, 230, 0)),
    ("cup", (30, 120, 255)),
    ("heart", (255, 40, 40)),
    ("thorax", (255, 220, 0)),
    ("lv", (255, 40, 40)),
    ("ventric", (255, 40, 40)),
    ("lesion", (0, 255, 255)),
    ("aneurysm", (0, 255, 255)),
)
_CYCLE = ((255, 0, 255), (255, 140, 0), (0, 255, 255), (160, 255, 0), (255, 255, 255))


def colour_for(name: str, index: int = 0) -> tuple[int, int, int]:
    """The outline colour of a mask by its name (disc green, cup blue...), else from a cycle."""
    lowered = name.lower()
    for key, rgb in _NAMED:
        if key in lowered:
            return rgb
    return _CYCLE[index % len(_CYCLE)]


def _slice(array: np.ndarray, volume: bool) -> np.ndarray:
    return array[array.shape[0] // 2] if volume else array


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros(mask.shape, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return out
    pad = 3 * width + 3  # morphology only near the mask: a disc on a 2 Mpx photo stays fast
    box = (slice(max(rows[0] - pad, 0), rows[-1] + pad + 1), slice(max(cols[0] - pad, 0), cols[-1] + pad + 1))
    part = mask[box]
    _, n = ndi.label(part, structure=np.ones((3, 3), bool))
    if part.sum() / n < 30:
        # Dot-sized objects: ring each one so it stays visible at any zoom.
        ring_in = ndi.binary_dilation(part, iterations=2 + width)
        out[box] = ndi.binary_dilation(ring_in, iterations=width) & ~ring_in
        return out
    edge = part & ~ndi.binary_erosion(part, border_value=0)
    out[box] = ndi.binary_dilation(edge, iterations=width - 1) if width > 1 else edge
    return out


def render_overlay(image: Image, masks: dict[str, Mask], path: str | Path | None = None) -> bytes:
    """Draw mask outlines on an image and return the PNG bytes (also written to ``path`` if given).

    Args:
        image: the image the masks were segmented on.
        masks: masks by name; the name picks the colour and labels the legend.
        path: where to write the PNG, if anywhere.

    Raises:
        ToolError: a mask is not on the image's grid.
    """
    from PIL import Image as PILImage
    from PIL import ImageDraw

    volume = image.ndim_spatial == 3
    base = display_array(image)
    rgb = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base.copy()
    height, width = rgb.shape[:2]
    line = max(1, round(min(height, width) / 300))
    legend: list[tuple[str, tuple[int, int, int]]] = []
    for i, (name, mask) in enumerate(masks.items()):
        array = np.asarray(mask.array, dtype=bool)
        grid = image.array.shape[:3] if volume else image.array.shape[:2]
        if array.shape != tuple(grid):
            raise ToolError(f"overlay: mask {name!r} has shape {array.shape}, the image {tuple(grid)}")
        colour = colour_for(name, i)
        rgb[_outline(_slice(array, volume), line)] = colour
        legend.append((name, colour))
    picture = PILImage.fromarray(rgb)
    if legend and min(height, width) >= 48:
        draw = ImageDraw.Draw(picture)
        for row, (name, colour) in enumerate(legend):
            y = 4 + 12 * row
            draw.rectangle([4, y, 12, y + 8], fill=colour)
            draw.text((16, y - 2), name, fill=colour)
    buf = io.BytesIO()
    picture.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return data
