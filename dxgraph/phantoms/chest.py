"""Synthetic frontal chest radiographs with a known cardiothoracic ratio.

Air outside the body is darkest, the lungs dark, soft tissue, mediastinum, heart and the
abdomen below the diaphragm bright. Lungs are the thoracic cavity minus the mediastinum
and the heart, cut below by a domed diaphragm; ribs, clavicles, the spine, lung texture,
exposure and noise vary per image. The truth is the heart's widest horizontal extent over
the thorax's widest internal width, both from the continuous shapes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

__all__ = ["render_chest"]


def _soft(dist: np.ndarray, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(dist / width, -30, 30)))


def _ellipse_dist(yy, xx, cy, cx, a, b, theta=0.0):
    """Approximate signed distance (positive inside) to an ellipse boundary."""
    c, s = math.cos(theta), math.sin(theta)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return (1 - rho) * min(a, b)


def render_chest(rng: np.random.Generator, height: int, width: int, ctr: float) -> tuple[np.ndarray, dict[str, float]]:
    """Draw one frontal chest radiograph.

    Args:
        rng: the case's own random generator.
        height: image rows.
        width: image columns.
        ctr: the cardiothoracic ratio to draw.

    Returns:
        ``(H, W)`` uint8 grey image and ``{"ctr", "heart_width_px", "thorax_width_px"}``.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx = width / 2 + rng.uniform(-0.03, 0.03) * width
    # Thoracic cavity (inner rib margin): the lungs' outer boundary.
    ta = width * rng.uniform(0.30, 0.38)
    tb = height * rng.uniform(0.34, 0.40)
    tcy = height * rng.uniform(0.44, 0.50)
    apex = tcy - tb * 0.97
    # Diaphragm domes: lowest at the lateral (costophrenic) and medial ends.
    base = tcy + tb * rng.uniform(0.25, 0.4)
    dome = tb * rng.uniform(0.1, 0.18)
    med_half = ta * rng.uniform(0.14, 0.2)  # superior mediastinum half-width
    heart_w = ctr * 2 * ta
    shift = rng.uniform(0.15, 0.3)  # heart sits left of midline (image right)
    heart_a = heart_w / 2
    heart_cx = cx + shift * heart_a
    heart_b = heart_a * rng.uniform(0.75, 0.95)

    def diaphragm(x):
        # Per hemithorax: dome peak between the heart border and the lateral wall.
        side = np.where(x < cx, -1.0, 1.0)
        inner = np.where(x < cx, heart_cx - heart_a, heart_cx + heart_a)
        outer = cx + side * ta
        t = np.clip((x - inner) / (outer - inner), 0, 1)
        return base - dome * 4 * t * (1 - t) - 0.15 * dome * (1 - t)

    # The widest cardiac point must sit above the diaphragm so the heart borders are seen.
    heart_cy = min(float(diaphragm(np.array([heart_cx - heart_a]))[0]),
                   float(diaphragm(np.array([heart_cx + heart_a]))[0])) - heart_b * rng.uniform(0.2, 0.45)

    thorax_d = _ellipse_dist(yy, xx, tcy, cx, ta, tb)
    below_apex = yy - apex
    above_diaphragm = diaphragm(xx) - yy
    heart_d = _ellipse_dist(yy, xx, heart_cy, heart_cx, heart_a, heart_b)
    mediast_d = med_half - np.abs(xx - cx - 0.1 * med_half)
    edge = rng.uniform(0.8, 1.6)
    lung = (_soft(thorax_d, edge) * _soft(below_apex, edge) * _soft(above_diaphragm, edge)
            * (1 - _soft(heart_d, edge)) * (1 - _soft(mediast_d, edge)))

    body_d = _ellipse_dist(yy, xx, tcy + 0.1 * height, cx, ta * rng.uniform(1.18, 1.3), height * 0.75)
    body = _soft(body_d, 2.0)
    shoulders = _soft(_ellipse_dist(yy, xx, apex + 0.05 * height, cx, ta * 1.45, 0.2 * height), 3.0)
    body = np.maximum(body, shoulders)

    soft_tissue = rng.uniform(0.5, 0.6)
    lung_level = rng.uniform(0.12, 0.22)
    img = 0.04 + body * (soft_tissue - 0.04)
    texture = 0.03 * ndi.gaussian_filter(rng.standard_normal((height, width)), 2.0) * 4
    img = img - lung * (soft_tissue - lung_level + texture)
    abdomen = _soft(-above_diaphragm, 3.0) * _soft(thorax_d + 0.1 * ta, 3.0)
    img = img + 0.05 * abdomen
    spine = _soft(ta * 0.07 - np.abs(xx - cx), 1.5) * body
    img = img + 0.05 * spine * (1 - lung)
    img = img + 0.1 * _soft(heart_d, edge) * _soft(above_diaphragm + heart_b, 3.0)

    # Ribs: thin bright arcs crossing each lung; clavicles near the apices.
    ribs = np.zeros_like(img)
    for k in range(10):
        ry = apex + (k + 0.6) * (base - apex) / 10
        arc = ry + 0.18 * tb * (1 - ((xx - cx) / ta) ** 2)
        ribs += _soft(2.0 - np.abs(yy - arc), 1.0)
    img = img + rng.uniform(0.03, 0.07) * np.clip(ribs, 0, 1) * body
    for side in (-1, 1):
        clav = apex + 0.04 * height + 0.1 * side * (xx - cx) * 0.3
        img = img + 0.06 * _soft(3.0 - np.abs(yy - clav), 1.0) * _soft(ta * 0.9 - np.abs(xx - cx), 2.0) \
            * (side * (xx - cx) > 0)

    img = ndi.gaussian_filter(img, rng.uniform(0.6, 1.5))
    gamma = rng.uniform(0.8, 1.25)
    img = np.clip(img, 0, 1) ** gamma
    img = img * rng.uniform(0.85, 1.1) + rng.normal(0, rng.uniform(0.005, 0.025), img.shape)
    out = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    return out, {"ctr": float(heart_w / (2 * ta)), "heart_width_px": float(heart_w), "thorax_width_px": float(2 * ta)}
