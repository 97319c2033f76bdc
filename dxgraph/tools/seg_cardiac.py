"""Left-ventricular blood pool in a bright-blood 3D volume (cine MRI, contrast CT).

The cavity is the bright, blood-filled component nearest the middle of the field of view
(cardiac volumes are planned on the left ventricle). Blood is split from myocardium
half-way between their levels, measured next to the boundary found, so partial-volume
voxels on the edge are counted by halves on average and volumes come out unbiased at
any resolution. A small opening first cuts thin bright bridges, e.g. to the right
ventricle through a noisy septum.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from dxgraph.errors import ToolError

__all__ = ["find_left_ventricle"]


def _pick_central(mask: np.ndarray, spacing: np.ndarray, min_voxels: int) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n == 0:
        return np.zeros_like(mask)
    idx = np.arange(1, n + 1)
    sizes = ndi.sum_labels(mask, lab, idx)
    centres = np.array(ndi.center_of_mass(mask, lab, idx)).reshape(n, 3)
    mid = (np.array(mask.shape) - 1) / 2
    dist = np.linalg.norm((centres - mid) * spacing, axis=1)
    dist[sizes < min_voxels] = np.inf
    if not np.isfinite(dist).any():
        return np.zeros_like(mask)
    return lab == idx[int(np.argmin(dist))]


def _segment(vol: np.ndarray, t: float, sp: np.ndarray, min_voxels: int) -> np.ndarray:
    ball = ndi.generate_binary_structure(3, 1)
    bright = vol > t
    picked = _pick_central(ndi.binary_opening(bright, ball), sp, min_voxels)
    # The opening only chose the component; give back the edge voxels it shaved off.
    return bright & ndi.binary_dilation(picked, ball)


def find_left_ventricle(volume: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Boolean mask of the LV cavity in a ``(D, H, W)`` volume with ``spacing`` in mm.

    Raises:
        ToolError: no bright blood pool of plausible size near the centre.
    """
    sp = np.asarray(spacing, dtype=float)
    vol = ndi.gaussian_filter(volume.astype(np.float32), 0.7 / (sp / sp.min()))
    voxel_ml = float(np.prod(sp)) / 1000
    min_voxels = int(5 / voxel_ml)  # a cavity under 5 mL is not a ventricle
    # Start half-way between soft tissue (the median inside the body) and blood (the top
    # half-percent, which the two ventricles' blood pools always fill); then refine.
    body = vol > threshold_otsu(vol[::2, ::2, ::2])
    if body.sum() < 100:
        raise ToolError("the volume has no contrast to segment (no body inside it)")
    tissue = float(np.median(vol[body]))
    blood = float(np.percentile(vol, 99.5))
    if blood <= tissue:
        raise ToolError("the volume has no bright blood pool above the soft-tissue level")
    t = 0.5 * (tissue + blood)
    ball = ndi.generate_binary_structure(3, 1)
    lv = _segment(vol, t, sp, min_voxels)
    for _ in range(3):
        if not lv.any():
            break
        shell = ndi.binary_dilation(lv, ball, iterations=3) & ~ndi.binary_dilation(lv, ball, iterations=1)
        core = ndi.binary_erosion(lv, ball, iterations=2)
        if core.sum() < 10 or shell.sum() < 10:
            break
        # The wall is the darkest tissue around the cavity; its level sits low in the shell.
        t_new = 0.5 * (float(np.median(vol[core])) + float(np.percentile(vol[shell], 25)))
        refined = _segment(vol, t_new, sp, min_voxels)
        if refined.sum() > 1.5 * lv.sum():
            break  # a refinement that spills into the surroundings is not one
        t, lv = t_new, refined
    if not lv.any():
        raise ToolError(
            f"no left-ventricular blood pool found near the centre of the volume "
            f"(no bright region over 5 mL; threshold {t:.3g})"
        )
    if lv.sum() > 0.25 * body.sum():
        raise ToolError("the bright region at the centre fills the body; no separate blood pool was found")
    return ndi.binary_fill_holes(lv)
