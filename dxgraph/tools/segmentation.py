"""Classical CPU segmenters, registered as tools.

These run anywhere in well under a second and need no weights: optic disc and cup on
fundus photographs, heart and thorax on chest radiographs, the left-ventricular cavity in
3D volumes, and microaneurysms on fundus photographs. The algorithms live in
``seg_fundus``, ``seg_chest``, ``seg_cardiac`` and ``seg_lesions``; this module checks
inputs, converts arrays and wraps the results as masks. A wrong kind of image or nothing
found raises ``ToolError``, which makes the indicator unavailable without stopping the run.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from dxgraph.errors import ToolError
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.registry import tool
from dxgraph.tools.seg_cardiac import find_left_ventricle
from dxgraph.tools.seg_chest import find_heart_thorax
from dxgraph.tools.seg_fundus import as_unit_rgb, find_disc_cup
from dxgraph.tools.seg_lesions import find_microaneurysms

__all__ = [
    "DiscCup",
    "HeartThorax",
    "segment_optic_disc_cup",
    "segment_heart_thorax",
    "segment_left_ventricle",
    "segment_microaneurysms",
]


class DiscCup(NamedTuple):
    disc: Mask
    cup: Mask


class HeartThorax(NamedTuple):
    heart: Mask
    thorax: Mask


def _describe(image: Image) -> str:
    shape = "x".join(map(str, image.array.shape))
    if image.ndim_spatial == 3:
        return f"a 3D volume ({shape})"
    return f"a {'colour' if image.is_color else 'grey'} 2D image ({shape})"


def _finite(array: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(array).all():
        raise ToolError(f"{name}: the image contains NaN or infinite pixels")
    return array


def _grey_2d(image: Image, name: str) -> np.ndarray:
    if image.ndim_spatial != 2:
        raise ToolError(f"{name} needs a 2D image, got {_describe(image)}")
    arr = _finite(np.asarray(image.array, dtype=np.float32), name)
    if image.is_color:
        arr = arr[..., :3].mean(-1)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        raise ToolError(f"{name}: the image is blank (every pixel is {lo:g})")
    return (arr - lo) / (hi - lo)


@tool(version="1")
def segment_optic_disc_cup(image: Image) -> DiscCup:
    """Segment the optic disc and cup on a colour fundus photograph.

    Finds the disc as the brightest disc-sized region after removing vessels, then splits
    the pale cup from the rim half-way between their local brightness levels; both are
    returned as ellipses fitted to their vessel-free margins.

    Args:
        image: colour fundus photograph (H x W x 3).
    """
    name = "segment_optic_disc_cup"
    if not image.is_color:
        raise ToolError(f"{name} needs a colour fundus photograph, got {_describe(image)}")
    rgb = as_unit_rgb(_finite(image.array, name))
    disc, cup = find_disc_cup(rgb)
    return DiscCup(Mask(disc, image.spacing, "optic disc"), Mask(cup, image.spacing, "optic cup"))


@tool(version="1")
def segment_heart_thorax(image: Image) -> HeartThorax:
    """Segment the heart and the thoracic cavity on a frontal chest radiograph.

    Both come from the lung fields: the thorax spans the lungs' outer margins, the heart
    the gap between their inner margins down to the cardiophrenic angles.

    Args:
        image: frontal (PA) chest radiograph, grey.
    """
    gray = _grey_2d(image, "segment_heart_thorax")
    heart, thorax = find_heart_thorax(gray)
    return HeartThorax(Mask(heart, image.spacing, "heart"), Mask(thorax, image.spacing, "thorax"))


@tool(version="1", outputs=("lv",))
def segment_left_ventricle(image: Image) -> Mask:
    """Segment the left-ventricular blood pool in a bright-blood 3D cardiac volume.

    Takes the bright blood component nearest the centre of the volume, split from the
    myocardium half-way between their levels so that volumes are unbiased.

    Args:
        image: 3D volume (D x H x W) with voxel spacing, blood bright (cine MRI, contrast CT).
    """
    name = "segment_left_ventricle"
    if image.ndim_spatial != 3:
        raise ToolError(f"{name} needs a 3D volume, got {_describe(image)}")
    if not image.spacing or len(image.spacing) != 3:
        raise ToolError(f"{name}: the volume has no voxel spacing; load it from NIfTI or DICOM, whose headers carry it")
    if min(image.array.shape) < 8:
        raise ToolError(f"{name}: the volume {_describe(image)} is too small to hold a ventricle")
    lv = find_left_ventricle(_finite(np.asarray(image.array), name), tuple(float(s) for s in image.spacing))
    return Mask(lv, image.spacing, "left ventricle")


def _auto_radii(green: np.ndarray) -> tuple[float, float]:
    # Dot sizes scale with the field of view when the photograph shows one; a crop from
    # inside the retina (no dark surround) is taken at the usual ~500 px field size.
    fov = ndi.gaussian_filter(green, 2) > 0.1 * float(np.percentile(green, 99))
    if fov.mean() > 0.9:
        return 1.2, 4.5
    scale = 2 * math.sqrt(fov.sum() / math.pi) / 470
    return 1.2 * scale, 4.5 * scale


@tool(version="1", outputs=("lesions",))
def segment_microaneurysms(image: Image, min_radius_px: float = 0.0, max_radius_px: float = 0.0) -> Mask:
    """Segment microaneurysms (small dark round dots) on a fundus photograph.

    A black top-hat of the green channel keeps dark details smaller than the largest dot;
    candidates above the image's own noise level that are round, dot-sized and clear of
    vessels are kept; on a colour photograph, only those red like blood (much darker in
    green than in red), so pigment clumps are not counted. Count them with ``lesion_count``.

    Args:
        image: fundus photograph, colour (green channel used) or grey.
        min_radius_px: smallest dot radius in pixels; 0 picks it from the field-of-view size.
        max_radius_px: largest dot radius in pixels; 0 picks it from the field-of-view size.
    """
    name = "segment_microaneurysms"
    if image.ndim_spatial != 2:
        raise ToolError(f"{name} needs a 2D fundus photograph, got {_describe(image)}")
    arr = _finite(np.asarray(image.array, dtype=np.float32), name)
    green = arr[..., 1] if image.is_color else arr
    red = arr[..., 0] if image.is_color else None  # blood is dark in green, pigment in red too
    top = float(green.max())
    if top <= float(green.min()):
        raise ToolError(f"{name}: the image is blank")
    green = green / top
    auto_min, auto_max = _auto_radii(green)
    lo = min_radius_px if min_radius_px > 0 else auto_min
    hi = max_radius_px if max_radius_px > 0 else auto_max
    if hi <= lo:
        raise ToolError(f"{name}: max_radius_px ({hi:g}) must be larger than min_radius_px ({lo:g})")
    return Mask(find_microaneurysms(green, lo, hi, red=red), image.spacing, "microaneurysms")
