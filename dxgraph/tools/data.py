"""The data types tools pass among themselves: images and masks with physical spacing.

These never enter graph state (which holds paths and numbers); they live inside one
indicator's run and in the tool cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Image", "Mask", "array_digest"]


def array_digest(array: np.ndarray) -> str:
    """A content hash of an array: dtype, shape and bytes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(array.dtype).encode())
    h.update(str(array.shape).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


@dataclass(eq=False)
class Image:
    """A loaded image.

    Attributes:
        array: float32 pixels. 2D grey ``(H, W)``, 2D colour ``(H, W, C)`` with C in 3/4,
            or a 3D volume ``(D, H, W)``.
        spacing: physical size of one pixel per spatial axis in mm (row, col) or
            (slice, row, col); None when the file carries none (PNG/JPEG).
        source: where it came from (path or ``sample:NAME``), for reports.
        meta: header facts worth showing (modality, manufacturer...), plain values only.
    """

    array: np.ndarray
    spacing: tuple[float, ...] | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    _digest: str | None = field(default=None, repr=False)

    @property
    def is_color(self) -> bool:
        return self.array.ndim == 3 and self.array.shape[-1] in (3, 4) and self.ndim_spatial == 2

    @property
    def ndim_spatial(self) -> int:
        if self.array.ndim == 3 and self.array.shape[-1] in (3, 4) and self.meta.get("layout") != "volume":
            return 2
        return self.array.ndim

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = array_digest(self.array)
        return self._digest


@dataclass(eq=False)
class Mask:
    """A binary mask over an image's spatial grid, with the same spacing."""

    array: np.ndarray
    spacing: tuple[float, ...] | None = None
    label: str = ""
    _digest: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.array.dtype != np.bool_:
            self.array = self.array.astype(bool)

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = array_digest(self.array)
        return self._digest

    @property
    def empty(self) -> bool:
        return not bool(self.array.any())
