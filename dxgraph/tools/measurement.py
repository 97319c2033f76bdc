"""Clinical measurements over masks: pure functions, registered as tools.

Each takes masks (or numbers) and returns a number with a unit; none looks at pixels, so
each is tested on masks whose answer is known exactly. Conventions, stated once:

* An *extent* along an axis counts pixels from the first to the last occupied row (or
  column), inclusive: a rasterised disc of radius r has a vertical extent of 2r + 1.
  Ratios of extents along the same axis need no spacing.
* Anything measured in mm, mm² or mL needs the image's spacing; a PNG has none, and a
  tool that needs it raises ``ToolError`` rather than inventing a pixel size.
* An empty mask where the anatomy must exist (disc, heart, thorax) is a ``ToolError``:
  the segmenter found nothing, and a ratio over nothing is not evidence.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from dxgraph.errors import ToolError
from dxgraph.tools.data import Mask
from dxgraph.tools.registry import tool

__all__ = [
    "Area",
    "vertical_cup_to_disc_ratio",
    "rim_to_disc_ratio",
    "cardiothoracic_ratio",
    "mask_area",
    "mask_volume",
    "ejection_fraction",
    "EDV_RANGE_ML",
    "lesion_count",
]


def _require_2d(mask: Mask, name: str, what: str) -> np.ndarray:
    array = np.asarray(mask.array, dtype=bool)
    if array.ndim != 2:
        raise ToolError(f"{name} needs a 2D {what} mask, got shape {array.shape}")
    return array


def _same_grid(a: np.ndarray, b: np.ndarray, name: str) -> None:
    if a.shape != b.shape:
        raise ToolError(f"{name}: the two masks have different shapes {a.shape} and {b.shape}; "
                        "segment them on the same image")


def _extent(array: np.ndarray, axis: int) -> int:
    occupied = np.flatnonzero(array.any(axis=1 - axis))
    return int(occupied[-1] - occupied[0] + 1) if occupied.size else 0


@tool(version="1", outputs=("vcdr",), units={"vcdr": "ratio"})
def vertical_cup_to_disc_ratio(disc: Mask, cup: Mask) -> float:
    """Vertical cup-to-disc ratio: the cup's vertical extent over the disc's.

    Glaucoma guidelines grade the optic nerve head by its vertical CDR (>= 0.6-0.7 is
    suspicious) because glaucomatous cupping progresses first at the poles.

    Args:
        disc: optic disc mask (2D).
        cup: optic cup mask on the same image; empty means no visible cup (ratio 0).
    """
    name = "vertical_cup_to_disc_ratio"
    d = _require_2d(disc, name, "disc")
    c = _require_2d(cup, name, "cup")
    _same_grid(d, c, name)
    if not d.any():
        raise ToolError(f"{name}: the disc mask is empty, so there is no disc to measure")
    return _extent(c, 0) / _extent(d, 0)


def _ray_exits(mask: np.ndarray, centre: tuple[float, float], angles: np.ndarray, step_px: np.ndarray,
               n_steps: int) -> np.ndarray:
    # Distance (in steps) to the last sample along each ray inside the mask's edge, 0 where
    # the ray never meets it. The edge is the 0.5 level of the bilinearly interpolated
    # mask, which follows a rasterised outline to a fraction of a pixel.
    t = np.arange(1, n_steps + 1, dtype=np.float64)
    rows = centre[0] + np.sin(angles)[:, None] * t[None, :] * step_px[0]
    cols = centre[1] + np.cos(angles)[:, None] * t[None, :] * step_px[1]
    values = ndi.map_coordinates(mask.astype(np.float32), [rows.ravel(), cols.ravel()], order=1, cval=0.0)
    inside = values.reshape(rows.shape) >= 0.5
    return np.where(inside.any(1), n_steps - np.argmax(inside[:, ::-1], axis=1), 0).astype(np.float64)


@tool(version="1", outputs=("rdr",), units={"rdr": "ratio"})
def rim_to_disc_ratio(disc: Mask, cup: Mask, n_angles: int = 720) -> float:
    """Rim-to-disc ratio: the narrowest neuroretinal rim over the vertical disc diameter.

    Definition (after the Disc Damage Likelihood Scale, Spaeth 2002): rays leave the disc
    centroid every ``360 / n_angles`` degrees; along each, the rim width is the distance to
    the disc's outer edge minus the distance to the cup's outer edge (0 when the ray misses
    the cup). The narrowest width over all rays is divided by the disc's vertical extent.
    Distances are in mm when the masks have spacing (so anisotropic pixels are handled),
    otherwise in pixels. A ratio below about 0.1-0.2 marks focal rim loss.

    Args:
        disc: optic disc mask (2D).
        cup: optic cup mask on the same image.
        n_angles: number of rays around the centre.
    """
    name = "rim_to_disc_ratio"
    d = _require_2d(disc, name, "disc")
    c = _require_2d(cup, name, "cup") & d
    _same_grid(d, c, name)
    if not d.any():
        raise ToolError(f"{name}: the disc mask is empty, so there is no disc to measure")
    if n_angles < 8:
        raise ToolError(f"{name}: n_angles must be at least 8, got {n_angles}")
    sy, sx = (float(s) for s in disc.spacing) if disc.spacing and len(disc.spacing) == 2 else (1.0, 1.0)
    rows, cols = np.flatnonzero(d.any(1)), np.flatnonzero(d.any(0))
    crop = (slice(max(rows[0] - 2, 0), rows[-1] + 3), slice(max(cols[0] - 2, 0), cols[-1] + 3))
    d, c = d[crop], c[crop]  # rays only cross the disc: work on its bounding box
    centre = tuple(float(v) for v in ndi.center_of_mass(d))
    step_mm = min(sy, sx) / 4  # quarter-pixel steps along every ray
    reach_mm = math.hypot(d.shape[0] * sy, d.shape[1] * sx)
    n_steps = int(math.ceil(reach_mm / step_mm))
    angles = np.linspace(0, 2 * np.pi, n_angles, endpoint=False)
    step_px = np.array([step_mm / sy, step_mm / sx])
    rim = (_ray_exits(d, centre, angles, step_px, n_steps) - _ray_exits(c, centre, angles, step_px, n_steps)) * step_mm
    diameter = _extent(d, 0) * sy
    return float(max(rim.min(), 0.0) / diameter)


@tool(version="1", outputs=("ctr",), units={"ctr": "ratio"})
def cardiothoracic_ratio(heart: Mask, thorax: Mask) -> float:
    """Cardiothoracic ratio: maximal horizontal cardiac width over maximal internal thoracic width.

    Both widths are horizontal projections (Danzer's method: the cardiac width is the sum
    of the largest right and left extents from the midline, wherever they lie). On a PA
    radiograph a ratio above 0.5 suggests cardiomegaly.

    Args:
        heart: cardiac silhouette mask (2D).
        thorax: thoracic cavity mask, inner rib margins (2D, same image).
    """
    name = "cardiothoracic_ratio"
    h = _require_2d(heart, name, "heart")
    t = _require_2d(thorax, name, "thorax")
    _same_grid(h, t, name)
    if not t.any():
        raise ToolError(f"{name}: the thorax mask is empty, so there is no thoracic width")
    if not h.any():
        raise ToolError(f"{name}: the heart mask is empty, so there is no cardiac width")
    return _extent(h, 1) / _extent(t, 1)


class Area(NamedTuple):
    area: float
    area_unit: str


@tool(version="1", units={"area": "mm2 (px2 without spacing; see area_unit)"})
def mask_area(mask: Mask) -> Area:
    """Area of a 2D mask: in mm² when the image has spacing, otherwise in pixels (px2).

    The unit is returned beside the number so that a PNG's pixel count is never read as
    square millimetres.

    Args:
        mask: a 2D mask.
    """
    array = _require_2d(mask, "mask_area", "")
    count = float(np.count_nonzero(array))
    if mask.spacing and len(mask.spacing) == 2:
        return Area(count * float(mask.spacing[0]) * float(mask.spacing[1]), "mm2")
    return Area(count, "px2")


@tool(version="1", outputs=("volume_ml",), units={"volume_ml": "mL"})
def mask_volume(mask: Mask) -> float:
    """Volume of a 3D mask in millilitres: voxel count times voxel volume.

    Args:
        mask: a 3D mask whose image had voxel spacing (NIfTI or DICOM).
    """
    array = np.asarray(mask.array, dtype=bool)
    if array.ndim != 3:
        raise ToolError(f"mask_volume needs a 3D mask, got shape {array.shape}; load a volume with expect: 3d")
    if not mask.spacing or len(mask.spacing) != 3:
        raise ToolError("mask_volume: the volume has no voxel spacing, so mL cannot be computed; "
                        "use a NIfTI or DICOM volume whose header gives voxel sizes")
    voxel_mm3 = float(np.prod([float(s) for s in mask.spacing]))
    return float(np.count_nonzero(array)) * voxel_mm3 / 1000.0


EDV_RANGE_ML = (20.0, 500.0)
"""Adult left-ventricular end-diastolic volumes outside this range are not a ventricle.

Normal adult LV EDV is about 60-230 mL by cardiac MRI; dilated cardiomyopathy reaches
300-400 mL. Under 20 mL or over 500 mL the segmenter found something else (or the image is
not a cardiac volume), and an ejection fraction from it would be a confident number about
nothing. The synthetic phantoms draw EDV in 100-190 mL.
"""


@tool(version="2", outputs=("ef",), units={"ef": "%"})
def ejection_fraction(edv_ml: float, esv_ml: float) -> float:
    """Ejection fraction in percent: 100 x (EDV - ESV) / EDV, from plausible volumes only.

    Volumes that no adult left ventricle has (EDV outside ``EDV_RANGE_ML``, ESV not between
    0 and EDV) are a ``ToolError`` naming the numbers, so the indicator is unavailable
    rather than a confident pass or fail; ESV equal to EDV usually means the same frame
    was given twice.

    Args:
        edv_ml: end-diastolic volume in mL.
        esv_ml: end-systolic volume in mL.
    """
    edv, esv = float(edv_ml), float(esv_ml)
    name = "ejection_fraction"
    if not (math.isfinite(edv) and math.isfinite(esv)):
        raise ToolError(f"{name}: volumes must be finite, got EDV {edv!r} and ESV {esv!r}")
    lo, hi = EDV_RANGE_ML
    if not lo <= edv <= hi:
        raise ToolError(f"{name}: EDV {edv:.1f} mL is outside the plausible adult left-ventricular range "
                        f"{lo:g}-{hi:g} mL (ESV {esv:.1f} mL); the segmentation did not find a ventricle, "
                        "or the image is not a cardiac volume")
    if esv <= 0:
        raise ToolError(f"{name}: ESV {esv:.1f} mL leaves no cavity at end-systole (EDV {edv:.1f} mL); "
                        "the end-systolic segmentation failed")
    if esv >= edv:
        raise ToolError(f"{name}: ESV {esv:.1f} mL is not below EDV {edv:.1f} mL, so the EF would be "
                        f"{100.0 * (edv - esv) / edv:.0f} %; the ED and ES images may be the same frame or swapped")
    return 100.0 * (edv - esv) / edv


@tool(version="1", outputs=("count",), units={"count": "lesions"})
def lesion_count(mask: Mask, min_area_px: int = 2) -> int:
    """Number of separate lesions: 8-connected components of at least ``min_area_px`` pixels.

    Args:
        mask: lesion mask (2D; a 3D mask is counted with 26-connectivity).
        min_area_px: smallest component counted, in pixels (drops single-pixel noise).
    """
    array = np.asarray(mask.array, dtype=bool)
    if array.ndim not in (2, 3):
        raise ToolError(f"lesion_count needs a 2D or 3D mask, got shape {array.shape}")
    if min_area_px < 1:
        raise ToolError(f"lesion_count: min_area_px must be at least 1, got {min_area_px}")
    labels, n = ndi.label(array, structure=np.ones((3,) * array.ndim, dtype=bool))
    if n == 0:
        return 0
    sizes = np.bincount(labels.ravel())[1:]
    return int(np.count_nonzero(sizes >= min_area_px))
