"""Measurements on reference masks, defined as the data sets' papers define them."""

from __future__ import annotations

import numpy as np

__all__ = ["vertical_extent", "max_width", "thoracic_width"]


def vertical_extent(mask: np.ndarray) -> int:
    """Rows spanned by the mask (the vertical diameter, in pixels); 0 when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def max_width(mask: np.ndarray) -> int:
    """Widest horizontal extent over all rows (the maximal transverse diameter), in pixels."""
    best = 0
    for row in mask:
        cols = np.flatnonzero(row)
        if cols.size:
            best = max(best, int(cols[-1] - cols[0] + 1))
    return best


def thoracic_width(right_lung: np.ndarray, left_lung: np.ndarray) -> int:
    """Maximal internal thoracic diameter: the widest row from the outer edge of one lung to the
    outer edge of the other (what the CTR's denominator measures on a PA film)."""
    return max_width(right_lung | left_lung)
