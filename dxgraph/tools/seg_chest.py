"""Heart and thorax on a frontal chest radiograph, from the lung fields.

The cardiothoracic ratio is read off the lungs: the thorax's internal width is the span
between the lungs' outer (rib-side) margins, and the heart's borders are the lungs' inner
margins where they bulge out around the heart. So the segmenter finds the two lung fields
(dark regions inside the body, one either side of the midline) and derives both masks row
by row from their margins. Below the cardiophrenic angles the innermost lung run jumps
out to the costophrenic recess; rows past that jump are not heart.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from dxgraph.errors import ToolError

__all__ = ["find_heart_thorax", "find_lungs"]


def find_lungs(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The right and left lung fields (image left and image right), as boolean masks.

    Raises:
        ToolError: no body outline, or not two lung-sized dark regions either side of it.
    """
    h, w = gray.shape
    img = ndi.gaussian_filter(gray.astype(np.float32), max(1.0, min(h, w) / 300))
    air = threshold_otsu(img)
    body = ndi.binary_fill_holes(img > air * 0.5 if (img > air).mean() > 0.95 else img > air)
    lab, n = ndi.label(body)
    if n == 0:
        raise ToolError("no body outline found in the chest radiograph (is it blank?)")
    body = lab == 1 + int(np.argmax(ndi.sum_labels(body, lab, np.arange(1, n + 1))))
    body = ndi.binary_fill_holes(body)
    inner = ndi.binary_erosion(body, iterations=max(1, min(h, w) // 100))
    if inner.sum() < 0.05 * h * w:
        raise ToolError("the body outline in the chest radiograph is too small to hold lungs")
    dark = (img < threshold_otsu(img[inner])) & inner
    dark = ndi.binary_opening(dark, iterations=max(1, min(h, w) // 200))
    lab, n = ndi.label(dark)
    if n < 2:
        raise ToolError("could not find two lung fields in the chest radiograph")
    sizes = ndi.sum_labels(dark, lab, np.arange(1, n + 1))
    cols = ndi.center_of_mass(dark, lab, np.arange(1, n + 1))
    mid = ndi.center_of_mass(body)[1]
    min_area = 0.01 * body.sum()
    left = [(s, i + 1) for i, (s, c) in enumerate(zip(sizes, cols)) if c[1] < mid and s >= min_area]
    right = [(s, i + 1) for i, (s, c) in enumerate(zip(sizes, cols)) if c[1] >= mid and s >= min_area]
    if not left or not right:
        raise ToolError("could not find a lung field on each side of the chest radiograph's midline")
    lung_r = ndi.binary_fill_holes(lab == max(left)[1])
    lung_l = ndi.binary_fill_holes(lab == max(right)[1])
    return lung_r, lung_l


def _margins(lung: np.ndarray, inner_is_max: bool) -> tuple[np.ndarray, np.ndarray]:
    rows = lung.any(1)
    cols = np.arange(lung.shape[1])
    big = lung.shape[1] + 1
    lo = np.where(lung, cols, big).min(1)
    hi = np.where(lung, cols, -1).max(1)
    inner, outer = (hi, lo) if inner_is_max else (lo, hi)
    return np.where(rows, inner, -1), np.where(rows, outer, -1)


def _inner_runs(lung: np.ndarray, inner_is_max: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column span of the lung run nearest the midline ((-1, -1) if none)."""
    h, w = lung.shape
    start = np.full(h, -1)
    end = np.full(h, -1)
    for r in np.flatnonzero(lung.any(1)):
        row = lung[r] if not inner_is_max else lung[r, ::-1]
        a = int(np.argmax(row))
        gap = np.flatnonzero(~row[a:])
        b = a + (int(gap[0]) if gap.size else w - a) - 1
        start[r], end[r] = (a, b) if not inner_is_max else (w - 1 - b, w - 1 - a)
    return start, end


def _cardiac_rows(lung: np.ndarray, inner_is_max: bool, start_row: int) -> np.ndarray:
    """Rows from ``start_row`` down to the cardiophrenic angle.

    The heart border is one connected stretch of the lung's inner margin: going down,
    each row's innermost lung run overlaps the one above. Past the cardiophrenic angle
    the medial recess ends and the innermost run becomes the lateral recess, which does
    not overlap it; that is where the heart's rows stop.
    """
    lo, hi = _inner_runs(lung, inner_is_max)
    keep = np.zeros(len(lo), bool)
    for r in range(start_row, len(lo)):
        if lo[r] < 0:
            break
        if r > start_row and (lo[r] > hi[r - 1] + 1 or hi[r] < lo[r - 1] - 1):
            break
        keep[r] = True
    return keep


def find_heart_thorax(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heart and thorax masks of a frontal chest radiograph (``(H, W)`` grey).

    Raises:
        ToolError: the lung fields could not be found.
    """
    h, w = gray.shape
    lung_r, lung_l = find_lungs(gray)
    r_inner, r_outer = _margins(lung_r, inner_is_max=True)
    l_inner, l_outer = _margins(lung_l, inner_is_max=False)
    both = (r_inner >= 0) & (l_inner >= 0)
    if both.sum() < 5:
        raise ToolError("the two lung fields do not overlap in height; cannot measure the chest")
    thorax = np.zeros((h, w), bool)
    cols = np.arange(w)
    thorax[both] = (cols[None, :] >= r_outer[both, None]) & (cols[None, :] <= l_outer[both, None])

    # The heart: walk down each lung's inner margin from a third of the way down the
    # lungs (above the heart) until it jumps out at the cardiophrenic angle.
    rows = np.flatnonzero(both)
    top, bottom = rows[0], rows[-1]
    start = top + (bottom - top) // 3
    heart_rows = _cardiac_rows(lung_r, True, start) & _cardiac_rows(lung_l, False, start)
    gap = np.where(heart_rows, l_inner - r_inner, 0)
    if gap.max() <= 0:
        raise ToolError("no cardiac silhouette found between the lung fields")
    heart = np.zeros((h, w), bool)
    # The heart starts where the mediastinum, narrowest above it, begins to widen.
    widest = int(np.argmax(gap))
    above = np.flatnonzero(heart_rows[: widest + 1])
    waist = above[int(np.argmin(gap[above]))]
    r_idx = np.flatnonzero(heart_rows)
    r_idx = r_idx[r_idx >= waist]
    heart[r_idx] = (cols[None, :] > r_inner[r_idx, None]) & (cols[None, :] < l_inner[r_idx, None])
    return heart, thorax
