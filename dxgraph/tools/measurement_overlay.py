"""Overlays that show the measurement, not only the masks.

A reviewer checking a vCDR needs to see the two vertical diameters it divides, at a size
where the disc is more than a few pixels: so each quantitative indicator's overlay is a
crop around what was measured, enlarged to at least ``MIN_SIDE`` pixels, with the outlines
and the measured lines and lengths drawn on it (disc and cup vertical diameters; the
widest heart and thorax rows; the LV outline on the middle slice with its area).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dxgraph.tools.data import Image, Mask
from dxgraph.tools.imaging import display_array
from dxgraph.tools.overlay import _outline, colour_for

__all__ = ["render_measurement", "MIN_SIDE"]

MIN_SIDE = 720


def _vertical(mask: np.ndarray) -> tuple[int, int, int] | None:
    """(top row, bottom row, column) of the vertical diameter: the longest column run's extent."""
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    col = int(cols[np.argmax(mask[:, cols].sum(0))])
    return int(rows[0]), int(rows[-1]), col


def _widest(mask: np.ndarray) -> tuple[int, int, int] | None:
    """(row, left col, right col) of the widest row."""
    best = None
    for r in np.flatnonzero(mask.any(1)):
        c = np.flatnonzero(mask[r])
        if best is None or c[-1] - c[0] > best[2] - best[1]:
            best = (int(r), int(c[0]), int(c[-1]))
    return best


def _box(masks: list[np.ndarray], shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    union = np.zeros(shape, bool)
    for m in masks:
        union |= m
    rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
    if rows.size == 0:
        return 0, shape[0], 0, shape[1]
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    pad = int(margin * max(h, w))
    return (max(0, rows[0] - pad), min(shape[0], rows[-1] + pad + 1),
            max(0, cols[0] - pad), min(shape[1], cols[-1] + pad + 1))


def render_measurement(image: Image, masks: dict[str, Mask], path: str | Path | None = None,
                       *, margin: float = 0.35) -> bytes:
    """A zoomed crop around the masks with outlines, measured lines and their lengths (PNG bytes)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    volume = image.ndim_spatial == 3
    base = display_array(image)
    rgb = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base[..., :3].copy()
    arrays = {n: np.asarray(m.array, bool) for n, m in masks.items()}
    if volume:
        arrays = {n: a[a.shape[0] // 2] for n, a in arrays.items()}
    y0, y1, x0, x1 = _box(list(arrays.values()), rgb.shape[:2], margin)
    crop = rgb[y0:y1, x0:x1]
    scale = max(1.0, MIN_SIDE / max(1, min(crop.shape[:2])))
    big = PILImage.fromarray(crop).resize((round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                                          PILImage.NEAREST if scale >= 2 else PILImage.BICUBIC)
    pic = np.asarray(big).copy()
    lw = max(2, round(scale))
    for i, (name, a) in enumerate(arrays.items()):
        sub = a[y0:y1, x0:x1]
        up = np.asarray(PILImage.fromarray(sub.astype(np.uint8) * 255).resize(big.size, PILImage.NEAREST)) > 127
        pic[_outline(up, lw)] = colour_for(name, i)
    out = PILImage.fromarray(pic)
    draw = ImageDraw.Draw(out)
    notes: list[tuple[str, tuple[int, int, int]]] = []

    def xy(r: float, c: float) -> tuple[float, float]:
        return ((c - x0 + 0.5) * scale, (r - y0 + 0.5) * scale)

    sizes: dict[str, int] = {}
    for i, (name, a) in enumerate(arrays.items()):
        colour = colour_for(name, i)
        low = name.lower()
        if "disc" in low or "cup" in low:
            v = _vertical(a)
            if v:
                top, bottom, col = v
                col += 3 if "cup" in low else 0  # side by side with the disc's line, not on it
                sizes[name] = bottom - top + 1
                draw.line([xy(top, col), xy(bottom, col)], fill=colour, width=lw + 1)
                for r in (top, bottom):
                    (cx, cy) = xy(r, col)
                    draw.line([(cx - 4 * lw, cy), (cx + 4 * lw, cy)], fill=colour, width=lw)
                notes.append((f"{name} vertical diameter {sizes[name]} px", colour))
        elif "heart" in low or "thorax" in low:
            w = _widest(a)
            if w:
                row, left, right = w
                sizes[name] = right - left + 1
                draw.line([xy(row, left), xy(row, right)], fill=colour, width=lw + 1)
                notes.append((f"{name} widest row {sizes[name]} px", colour))
        else:
            notes.append((f"{name} area {int(a.sum())} px{' (middle slice)' if volume else ''}", colour))
    ratio = None
    if "cup" in sizes and "disc" in sizes and sizes["disc"]:
        ratio = f"vCDR (pixel extents) = {sizes['cup']} / {sizes['disc']} = {sizes['cup'] / sizes['disc']:.3f}"
    elif "heart" in sizes and "thorax" in sizes and sizes["thorax"]:
        ratio = f"CTR (pixel extents) = {sizes['heart']} / {sizes['thorax']} = {sizes['heart'] / sizes['thorax']:.3f}"
    if ratio:
        notes.append((ratio, (255, 255, 255)))
    for k, (text, colour) in enumerate(notes):
        y = 6 + 16 * k
        draw.rectangle([4, y - 2, 10 + 7 * len(text), y + 13], fill=(0, 0, 0))
        draw.text((8, y), text, fill=colour)
    buf = io.BytesIO()
    out.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data
