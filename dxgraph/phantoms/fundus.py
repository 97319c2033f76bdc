"""Synthetic colour fundus photographs with a known optic disc, cup and microaneurysms.

The picture is built from the parts a classical segmenter has to cope with on a real
photograph: a circular field of view, an orange retina with low-frequency texture, an
illumination gradient and vignetting, a vertically oval disc with a paler cup whose edge
is soft, a vessel tree that leaves the disc and crosses its rim, a darker fovea, sensor
noise and blur. Truth values are computed from the continuous shapes, not from pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["FundusTruth", "render_fundus", "ellipse_vertical_half_extent", "rim_to_disc_truth"]


@dataclass(frozen=True)
class _Ellipse:
    cy: float
    cx: float
    a: float  # horizontal semi-axis before rotation
    b: float  # vertical semi-axis before rotation
    theta: float  # rotation in radians

    def rho(self, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        """Normalised radius: 1 on the boundary."""
        c, s = math.cos(self.theta), math.sin(self.theta)
        dx, dy = xx - self.cx, yy - self.cy
        u = dx * c + dy * s
        v = -dx * s + dy * c
        return np.sqrt((u / self.a) ** 2 + (v / self.b) ** 2)

    def ray_exit(self, oy: float, ox: float, phi: np.ndarray) -> np.ndarray:
        """Distance from (oy, ox), inside the ellipse, to its boundary along angles ``phi``."""
        c, s = math.cos(self.theta), math.sin(self.theta)
        dx, dy = np.cos(phi), np.sin(phi)
        u0 = (ox - self.cx) * c + (oy - self.cy) * s
        v0 = -(ox - self.cx) * s + (oy - self.cy) * c
        du = dx * c + dy * s
        dv = -dx * s + dy * c
        qa = (du / self.a) ** 2 + (dv / self.b) ** 2
        qb = 2 * (u0 * du / self.a**2 + v0 * dv / self.b**2)
        qc = (u0 / self.a) ** 2 + (v0 / self.b) ** 2 - 1
        return (-qb + np.sqrt(qb**2 - 4 * qa * qc)) / (2 * qa)


def ellipse_vertical_half_extent(a: float, b: float, theta: float) -> float:
    """Half the vertical extent of an ellipse with semi-axes a (x), b (y) rotated by theta."""
    return math.sqrt((a * math.sin(theta)) ** 2 + (b * math.cos(theta)) ** 2)


def rim_to_disc_truth(disc: _Ellipse, cup: _Ellipse, steps: int = 2880) -> float:
    """Narrowest rim, measured along rays from the disc centre, over the vertical disc diameter."""
    phi = np.linspace(0, 2 * np.pi, steps, endpoint=False)
    rim = disc.ray_exit(disc.cy, disc.cx, phi) - cup.ray_exit(disc.cy, disc.cx, phi)
    return float(rim.min() / (2 * ellipse_vertical_half_extent(disc.a, disc.b, disc.theta)))


@dataclass(frozen=True)
class FundusTruth:
    vcdr: float
    rdr: float
    ma_count: int
    disc_center: tuple[float, float]
    disc_radius: float


def _soft_inside(rho: np.ndarray, radius: float, width: float) -> np.ndarray:
    # A sigmoid edge centred on rho == 1, so the 50 % level sits on the true boundary.
    dist = (1.0 - rho) * radius
    return 1.0 / (1.0 + np.exp(-np.clip(dist / max(width, 1e-3), -30, 30)))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (field.std() + 1e-9)


def _vessel_tree(rng: np.random.Generator, size: int, origin: tuple[float, float], fov: tuple[float, float, float],
                 width0: float, temporal: int) -> np.ndarray:
    """Rasterise a vessel tree leaving ``origin``; returns a soft 0..1 vessel map."""
    canvas = np.zeros((size, size), dtype=np.float32)
    cy, cx, radius = fov
    # Arcades leave the disc up and down and bend towards the fovea (temporal side);
    # thinner vessels go nasally; side branches split off along the way.
    starts = [(-math.pi / 2 + temporal * 0.25, width0, temporal * 0.006),
              (math.pi / 2 - temporal * 0.25, width0, -temporal * 0.006),
              (-math.pi / 2 - temporal * 0.35, width0 * 0.65, -temporal * 0.004),
              (math.pi / 2 + temporal * 0.35, width0 * 0.65, temporal * 0.004)]
    stack = [(origin[0], origin[1], ang + rng.uniform(-0.2, 0.2), w, curv, 0) for ang, w, curv in starts]
    step = 1.5
    while stack:
        y, x, ang, w, curv, depth = stack.pop()
        length = 0.0
        max_len = radius * rng.uniform(0.8, 1.6) / (depth + 1)
        while length < max_len and w > 0.6:
            ang += curv * step + rng.normal(0, 0.02)
            y += step * math.sin(ang)
            x += step * math.cos(ang)
            length += step
            if (y - cy) ** 2 + (x - cx) ** 2 > (radius * 1.02) ** 2:
                break
            r = max(w / 2, 0.5)
            y0, y1 = int(max(y - r - 1, 0)), int(min(y + r + 2, size))
            x0, x1 = int(max(x - r - 1, 0)), int(min(x + r + 2, size))
            if y0 >= y1 or x0 >= x1:
                break
            yy, xx = np.mgrid[y0:y1, x0:x1]
            d = np.sqrt((yy - y) ** 2 + (xx - x) ** 2)
            canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], np.clip(r + 0.5 - d, 0, 1))
            w *= 1 - 0.0009 * step
            if depth < 2 and rng.random() < 0.015 * step and length > 10:
                side = 1 if rng.random() < 0.5 else -1
                stack.append((y, x, ang + side * rng.uniform(0.5, 1.0), w * 0.65, -curv * 0.5, depth + 1))
                w *= 0.85
    return canvas


def render_fundus(rng: np.random.Generator, size: int, vcdr: float, ma_count: int = 0,
                  distractor: bool = False) -> tuple[np.ndarray, FundusTruth]:
    """Draw one fundus photograph.

    Args:
        rng: the case's own random generator (everything random comes from it).
        size: side length in pixels.
        vcdr: the vertical cup-to-disc ratio to draw.
        ma_count: microaneurysms to place away from vessels, disc and each other.
        distractor: also draw a larger dot-blot haemorrhage, which is not a microaneurysm.

    Returns:
        ``(H, W, 3)`` uint8 RGB and the truth.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    fcy = size / 2 + rng.uniform(-0.02, 0.02) * size
    fcx = size / 2 + rng.uniform(-0.02, 0.02) * size
    frad = size * rng.uniform(0.44, 0.48)
    eye = 1 if rng.random() < 0.5 else -1  # +1: disc on the left, fovea to its right
    disc_b = frad * rng.uniform(0.10, 0.15)
    disc_a = disc_b * rng.uniform(0.85, 1.0)
    disc_t = rng.uniform(-0.17, 0.17)
    dcy = fcy + rng.uniform(-0.12, 0.12) * frad
    dcx = fcx - eye * rng.uniform(0.38, 0.55) * frad
    disc = _Ellipse(dcy, dcx, disc_a, disc_b, disc_t)
    ext_d = ellipse_vertical_half_extent(disc_a, disc_b, disc_t)
    for _ in range(200):
        aspect = rng.uniform(0.85, 1.1)
        cup_t = disc_t + rng.uniform(-0.1, 0.1)
        cup_b = vcdr * ext_d / ellipse_vertical_half_extent(aspect, 1.0, cup_t)
        cup_a = aspect * cup_b
        off = rng.uniform(0, 0.25) * (1 - vcdr) * disc_b
        ang = rng.uniform(0, 2 * math.pi)
        cup = _Ellipse(dcy + off * math.sin(ang), dcx + off * math.cos(ang), cup_a, cup_b, cup_t)
        phi = np.linspace(0, 2 * np.pi, 720, endpoint=False)
        rim = disc.ray_exit(dcy, dcx, phi) - cup.ray_exit(dcy, dcx, phi)
        if rim.min() > 0.06 * disc_b:
            break
    else:  # pragma: no cover - the sampling ranges make this unreachable
        raise RuntimeError("could not place a cup inside the disc")

    bg = np.array([0.80, 0.36, 0.17]) * rng.uniform(0.85, 1.1)
    contrast = rng.uniform(0.7, 1.15)
    rim_col = bg + contrast * (np.array([0.97, 0.66, 0.40]) - bg)
    cup_col = rim_col + contrast * (np.array([1.0, 0.88, 0.70]) - rim_col)
    disc_alpha = _soft_inside(disc.rho(yy, xx), disc_b, rng.uniform(0.8, 2.0))[..., None]
    cup_alpha = _soft_inside(cup.rho(yy, xx), cup_b, rng.uniform(0.04, 0.08) * disc_b)[..., None]
    tex = 1 + 0.03 * _smooth_noise(rng, (size, size), size / 40)[..., None]
    img = bg * tex * (1 - disc_alpha) + disc_alpha * (rim_col * (1 - cup_alpha) + cup_col * cup_alpha)

    # Fovea: a darker, redder spot about 2.5 disc diameters temporal to the disc.
    fov_y, fov_x = dcy + rng.uniform(-0.3, 0.3) * disc_b, dcx + eye * 5.0 * disc_b
    fovea = np.exp(-((yy - fov_y) ** 2 + (xx - fov_x) ** 2) / (2 * (0.8 * disc_b) ** 2))
    img = img * (1 - np.array([0.12, 0.25, 0.25]) * fovea[..., None])

    # Vessels emerge at the nasal side of the cup, as the central retinal trunk does.
    origin = (cup.cy + rng.uniform(-0.3, 0.3) * cup_b, cup.cx - eye * rng.uniform(0.3, 0.7) * cup_a)
    vessels = _vessel_tree(rng, size, origin, (fcy, fcx, frad), disc_b * rng.uniform(0.18, 0.26), eye)
    vessels = ndi.gaussian_filter(vessels, 0.6)
    depth = np.array([0.35, 0.6, 0.55]) * rng.uniform(0.8, 1.1)
    img = img * (1 - depth * vessels[..., None])

    placed: list[tuple[float, float, float]] = []
    if ma_count or distractor:
        vessel_far = ndi.distance_transform_edt(vessels < 0.05)
        scale = size / 512
        tries = 0
        while len(placed) < ma_count and tries < 5000:
            tries += 1
            r = rng.uniform(1.6, 3.2) * scale
            y, x = fcy + rng.uniform(-0.7, 0.7) * frad, fcx + rng.uniform(-0.7, 0.7) * frad
            if (y - fcy) ** 2 + (x - fcx) ** 2 > (0.75 * frad) ** 2:
                continue
            if vessel_far[int(y), int(x)] < r + 5 * scale or (y - dcy) ** 2 + (x - dcx) ** 2 < (2.2 * disc_b) ** 2:
                continue
            if any((y - py) ** 2 + (x - px) ** 2 < (6 * max(r, pr) + 4) ** 2 for py, px, pr in placed):
                continue
            placed.append((y, x, r))
        if len(placed) < ma_count:  # pragma: no cover - 5000 tries always suffice at these sizes
            raise RuntimeError("could not place all microaneurysms")
        for y, x, r in placed:
            dot = _soft_inside(np.sqrt((yy - y) ** 2 + (xx - x) ** 2) / r, r, 0.5)
            img = img * (1 - np.array([0.35, 0.55, 0.5]) * rng.uniform(0.8, 1.1) * dot[..., None])
        if distractor:
            for _ in range(200):
                r = rng.uniform(9, 13) * scale
                y, x = fcy + rng.uniform(-0.6, 0.6) * frad, fcx + rng.uniform(-0.6, 0.6) * frad
                if vessel_far[int(y), int(x)] > r + 4 and (y - dcy) ** 2 + (x - dcx) ** 2 > (2.5 * disc_b) ** 2 \
                        and all((y - py) ** 2 + (x - px) ** 2 > (r + 6 * pr + 4) ** 2 for py, px, pr in placed):
                    blot = _soft_inside(np.sqrt((yy - y) ** 2 + (xx - x) ** 2) / r, r, 1.5)
                    img = img * (1 - np.array([0.35, 0.55, 0.5]) * blot[..., None])
                    break

    # Illumination: a linear gradient and vignetting, then the camera's circular aperture.
    g_ang = rng.uniform(0, 2 * math.pi)
    grad = 1 + rng.uniform(0, 0.15) * ((xx - fcx) * math.cos(g_ang) + (yy - fcy) * math.sin(g_ang)) / frad
    vign = 1 - rng.uniform(0.05, 0.25) * ((xx - fcx) ** 2 + (yy - fcy) ** 2) / frad**2
    img = img * (grad * vign)[..., None]
    fov_alpha = _soft_inside(np.sqrt((yy - fcy) ** 2 + (xx - fcx) ** 2) / frad, frad, 1.0)
    img = img * fov_alpha[..., None]
    img = ndi.gaussian_filter(img, (0.7, 0.7, 0))
    img = img + rng.normal(0, rng.uniform(0.004, 0.02), img.shape)
    out = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    truth = FundusTruth(
        vcdr=float(vcdr),
        rdr=rim_to_disc_truth(disc, cup),
        ma_count=len(placed),
        disc_center=(float(dcy), float(dcx)),
        disc_radius=float(ext_d),
    )
    return out, truth
