"""Synthetic end-diastolic / end-systolic cardiac volumes with a known ejection fraction.

Bright-blood contrast (as in cine SSFP MRI or contrast CT): the left-ventricular cavity is
an ellipsoid of blood inside a darker myocardial wall, with a bright right-ventricular
cavity across the septum, a body outline in darker tissue, smooth texture and noise. The
long axis is tilted by a random rotation. ED and ES share position and orientation; only
the cavity shrinks and the wall thickens. Volumes come from the continuous ellipsoids.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial.transform import Rotation

__all__ = ["render_lv_pair"]


def _soft(dist: np.ndarray, width: float = 0.5) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(dist / width, -30, 30)))


def _ellipsoid_dist(pts: np.ndarray, centre: np.ndarray, semi: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Approximate signed distance in mm (positive inside) to a rotated ellipsoid."""
    local = (pts - centre) @ rot  # coordinates along the ellipsoid's own axes
    rho = np.sqrt(((local / semi) ** 2).sum(-1))
    return (1 - rho) * semi.min()


def render_lv_pair(rng: np.random.Generator, ef: float, shape: tuple[int, int, int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], dict[str, float]]:
    """Draw an ED and an ES volume of one synthetic heart.

    Args:
        rng: the case's own random generator.
        ef: the ejection fraction to draw, in percent.
        shape: ``(D, H, W)``; random when None.

    Returns:
        ED volume, ES volume (both int16, ``(D, H, W)``), spacing in mm per axis and
        ``{"edv_ml", "esv_ml", "ef"}``.
    """
    spacing = (float(rng.uniform(2.5, 3.2)), *(2 * [float(rng.uniform(1.6, 2.0))]))
    if shape is None:
        shape = (int(math.ceil(140 / spacing[0])), int(rng.integers(92, 113)), int(rng.integers(92, 113)))
    sp = np.array(spacing)
    extent = np.array(shape) * sp
    centre = extent / 2 + rng.uniform(-6, 6, 3)
    rot = Rotation.from_euler("xyz", rng.uniform(-25, 25, 3), degrees=True).as_matrix()
    edv = rng.uniform(100, 190)  # mL
    esv = edv * (1 - ef / 100)
    elong = rng.uniform(1.3, 1.6)
    short_ratio = rng.uniform(0.85, 1.0)

    def semi_axes(vol_ml: float) -> np.ndarray:
        # Long axis first (along the slice axis before rotation), then two short axes.
        r = (vol_ml * 1000 / (4 / 3 * math.pi * elong * short_ratio)) ** (1 / 3)
        return np.array([elong * r, r, short_ratio * r])

    zz, yy, xx = np.meshgrid(*(np.arange(n) * s + s / 2 for n, s in zip(shape, spacing)), indexing="ij")
    pts = np.stack([zz, yy, xx], -1).astype(np.float32)
    body_semi = extent * np.array([0.8, 0.45, 0.47])
    body = _soft(_ellipsoid_dist(pts, extent / 2, body_semi, np.eye(3)), 2.0)
    texture = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
    texture /= texture.std() + 1e-9
    blood = rng.uniform(0.75, 0.95)
    myo = rng.uniform(0.22, 0.32)
    tissue = rng.uniform(0.38, 0.5)
    noise = rng.uniform(0.02, 0.06)
    septum_dir = rot @ np.array([0.0, 0.0, 1.0])  # RV lies across the septum along a short axis

    semi_ed = semi_axes(edv)
    wall_ed = rng.uniform(7, 9)  # mm
    rv_semi = semi_ed * np.array([0.85, 1.0, 0.55])
    rv_centre = centre - septum_dir * (semi_ed[2] + wall_ed + rv_semi[2] * 0.9)
    volumes = []
    # In systole the cavity shrinks, the wall thickens and the RV empties too.
    for semi, wall, rv_scale in ((semi_ed, wall_ed, 1.0), (semi_axes(esv), wall_ed * 1.4, 0.75)):
        lv = _soft(_ellipsoid_dist(pts, centre, semi, rot) / sp.min())
        myo_shell = _soft(_ellipsoid_dist(pts, centre, semi + wall, rot) / sp.min())
        rv = _soft(_ellipsoid_dist(pts, rv_centre, rv_semi * rv_scale, rot) / sp.min()) * (1 - myo_shell)
        img = 0.03 + body * (tissue - 0.03 + 0.04 * texture)
        img = img * (1 - myo_shell) + myo_shell * (myo + 0.02 * texture)
        img = img * (1 - lv) + lv * blood
        img = img * (1 - rv) + rv * blood * 0.95
        img = ndi.gaussian_filter(img, 0.6)
        img = img + rng.normal(0, noise, shape)
        volumes.append(np.clip(np.round(img * 1000), -1000, 3000).astype(np.int16))
    truth = {"edv_ml": float(edv), "esv_ml": float(esv), "ef": float(100 * (edv - esv) / edv)}
    return volumes[0], volumes[1], spacing, truth
