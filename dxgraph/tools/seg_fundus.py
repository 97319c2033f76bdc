"""Optic disc and cup on a colour fundus photograph, by classical image processing.

The pipeline follows what graders do by eye. Find the field of view and take the
brightest disc-sized blob (after closing away the dark vessels) as the disc's location.
In a region around it, brought down to a fixed size relative to the disc, vessels are
found (what a closing lifts clearly) and filled in from their neighbours. The disc
margin is the steepest iso-contour from a fifth to a little past half-way between the
retina's and the disc's local levels; the cup is split from the rim half-way between
their levels, each sampled clear of the soft cup edge (and the rim clear of the disc
margin). The rim's level is allowed to vary around the disc, since a healthy temporal
rim is paler than the rest. Half-way is where a blurred step edge really is, so results
do not depend on image sharpness. Disc and cup are near-ellipses: each is
returned as an ellipse fitted to its margin where no vessel crosses it.

Before any level is taken the region is flat-fielded: uneven illumination (a lamp off
centre, vignetting) multiplies the image by a slowly varying field, which across the
region around the disc is close to a plane. A plane fitted to the retina in an annulus
around the disc (vessels closed away) is divided out, so a ramp no longer makes one side
of the rim as bright as the cup.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import EllipseModel, label, regionprops
from skimage.transform import downscale_local_mean, resize

from dxgraph.errors import ToolError

__all__ = ["find_disc_cup", "field_of_view", "as_unit_rgb"]

RR_WORK = 40.0  # disc radius, in px, of the working image for the fine pass


def as_unit_rgb(array: np.ndarray) -> np.ndarray:
    """RGB float in [0, 1] from any colour array (alpha dropped, 0-255 or 0-1 input)."""
    rgb = np.asarray(array, dtype=np.float32)[..., :3]
    top = float(rgb.max())
    if top <= 0 or not math.isfinite(top):
        raise ToolError("the fundus image is blank (all pixels are zero or not finite)")
    return rgb / (255.0 if top > 1.5 else 1.0)


def field_of_view(lum: np.ndarray) -> np.ndarray:
    """The camera's circular aperture: the largest bright connected region, holes filled."""
    ref = float(np.percentile(lum, 99))
    fov = ndi.gaussian_filter(lum, 2) > 0.15 * ref
    lab, n = ndi.label(fov)
    if n == 0:
        raise ToolError("no field of view found in the fundus image (is it completely dark?)")
    sizes = ndi.sum_labels(fov, lab, index=np.arange(1, n + 1))
    return ndi.binary_fill_holes(lab == 1 + int(np.argmax(sizes)))


def _masked_smooth(img: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    # Normalised convolution: blur only within the FOV so its black surround does not
    # drag the edge of the retina down.
    num = ndi.gaussian_filter(img * mask, sigma)
    den = ndi.gaussian_filter(mask.astype(np.float32), sigma)
    return num / np.maximum(den, 1e-3)


def _close(img: np.ndarray, side: float) -> np.ndarray:
    # Closing removes the dark vessels that cross disc and cup. A flat convex structuring
    # element leaves every convex bright level set untouched, so the near-elliptic disc
    # and cup keep their outline however large it is; a square makes it separable (fast).
    size = max(3, int(side) | 1)
    return ndi.grey_closing(img, size=(size, size))


def _inpaint_vessels(img: np.ndarray, rr: float) -> tuple[np.ndarray, np.ndarray]:
    """Vessel mask, and the image with vessel pixels replaced by nearby non-vessel pixels.

    Vessels are what a closing lifts clearly above the noise (they absorb strongly; the
    disc and cup, being convex and bright, are not lifted at all). Filling them from
    their own neighbours keeps the disc and cup boundaries where they are, which a plain
    closing does not where a vessel runs along a boundary.
    """
    smooth = ndi.gaussian_filter(img, max(1.0, 0.04 * rr))
    noise = 1.4826 * float(np.median(np.abs(img - ndi.gaussian_filter(img, 1.0))))
    closed = _close(smooth, 0.9 * rr)
    vessel = (closed - smooth) > np.maximum(0.1 * closed, 3 * noise)
    vessel = ndi.binary_dilation(vessel, iterations=max(1, int(0.04 * rr)))
    if not vessel.any():
        return img, vessel
    keep = (~vessel).astype(np.float32)
    out = img.copy()
    todo = vessel.copy()
    sigma = max(1.0, 0.12 * rr)
    for _ in range(4):
        weight = ndi.gaussian_filter(keep, sigma)
        filled = ndi.gaussian_filter(img * keep, sigma) / np.maximum(weight, 1e-6)
        reached = todo & (weight > 1e-3)
        out[reached] = filled[reached]
        todo &= ~reached
        if not todo.any():
            break
        sigma *= 2  # wide gaps (vessel crossings) need a wider reach
    out[todo] = closed[todo]
    return out, vessel


def _level_threshold(img: np.ndarray, inner: np.ndarray, outer: np.ndarray, fallback: float) -> float:
    if inner.sum() < 5 or outer.sum() < 5:
        return fallback
    return 0.5 * (float(np.median(img[inner])) + float(np.median(img[outer])))


def _component_at(mask: np.ndarray, point: tuple[int, int]) -> np.ndarray:
    lab = label(mask)
    if lab.max() == 0:
        return mask
    value = lab[point]
    if value == 0:  # the seed fell in a gap: take the component nearest to it
        dist = ndi.distance_transform_edt(lab == 0, return_indices=True)[1]
        value = lab[dist[0][point], dist[1][point]]
    return ndi.binary_fill_holes(lab == value)


# An ellipse is (centre row, centre col, first-axis unit vector (row, col), semi-axes).
Ellipse = tuple[float, float, float, float, float, float]


def _moment_fit(mask: np.ndarray) -> Ellipse:
    props = regionprops(mask.astype(np.uint8))[0]
    cy, cx = props.centroid
    o = props.orientation  # angle between the row axis and the major axis
    return cy, cx, math.cos(o), math.sin(o), props.axis_major_length / 2, props.axis_minor_length / 2


def _fit(mask: np.ndarray, unreliable: np.ndarray) -> Ellipse:
    """Fit an ellipse to the region's boundary, leaving out the stretches next to vessels.

    Vessels crossing a boundary bend it inwards or outwards, so those stretches are left
    out of a least-squares fit to the rest; if too little boundary is left, the region's
    moments are used instead.
    """
    moments = _moment_fit(mask)
    edge = mask & ~ndi.binary_erosion(mask)
    total = int(edge.sum())
    pts = np.argwhere(edge & ~unreliable)
    if total < 12 or len(pts) < max(12, 0.35 * total):
        return moments
    model = EllipseModel.from_estimate(pts[:, ::-1].astype(float))
    if not model:
        return moments
    (xc, yc), (ra, rb), theta = model.center, model.axis_lengths, model.theta
    # Boundary pixels sit half a pixel inside the edge they mark.
    fit = (yc, xc, math.sin(theta), math.cos(theta), ra + 0.4, rb + 0.4)
    area_ratio = fit[4] * fit[5] / max(moments[4] * moments[5], 1e-6)
    near = math.hypot(yc - moments[0], xc - moments[1]) < 0.25 * moments[4]
    return fit if near and 0.7 < area_ratio < 1.4 else moments


def _rho(shape: tuple[int, int], fit: Ellipse, scale: tuple[float, float] = (1.0, 1.0),
         offset: tuple[int, int] = (0, 0), box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Normalised elliptic radius (1 on the boundary) of the pixels of ``box`` at full scale.

    ``fit`` is in working-image pixels; a full-scale pixel maps to working pixels through
    ``scale`` (full pixels per working pixel, per axis) and ``offset`` (the working image's
    top-left corner at full scale).
    """
    cy, cx, ur, uc, ra, rb = fit
    y0, y1, x0, x1 = box or (0, shape[0], 0, shape[1])
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy = (yy - offset[0] + 0.5) / scale[0] - 0.5 - cy
    dx = (xx - offset[1] + 0.5) / scale[1] - 0.5 - cx
    along = dy * ur + dx * uc
    across = -dy * uc + dx * ur
    return np.sqrt((along / max(ra, 1e-6)) ** 2 + (across / max(rb, 1e-6)) ** 2)


def _raster(shape: tuple[int, int], fit: Ellipse, scale: tuple[float, float], offset: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    reach = max(fit[4], fit[5]) + 1
    cy, cx = (fit[0] + 0.5) * scale[0] - 0.5 + offset[0], (fit[1] + 0.5) * scale[1] - 0.5 + offset[1]
    box = (max(0, int(cy - reach * scale[0])), min(shape[0], int(cy + reach * scale[0]) + 2),
           max(0, int(cx - reach * scale[1])), min(shape[1], int(cx + reach * scale[1]) + 2))
    if box[0] < box[1] and box[2] < box[3]:
        out[box[0]:box[1], box[2]:box[3]] = _rho(shape, fit, scale, offset, box) <= 1.0
    return out


def _rim_level(img: np.ndarray, rim: np.ndarray, theta: np.ndarray, sectors: int = 12) -> np.ndarray:
    """The rim's level at every pixel: a first harmonic in the angle around the disc centre.

    It is fitted to the medians of the angular sectors that hold enough rim samples, and
    kept within their range so that it never extrapolates past what was seen. With fewer
    than half the sectors sampled, the pooled median is used everywhere.
    """
    sector = ((theta + math.pi) / (2 * math.pi) * sectors).astype(int) % sectors
    need = max(5, int(0.1 * rim.sum() / sectors))
    angles, levels = [], []
    for s in range(sectors):
        values = img[rim & (sector == s)]
        if values.size >= need:
            angles.append(-math.pi + (s + 0.5) * 2 * math.pi / sectors)
            levels.append(float(np.median(values)))
    if len(levels) < sectors // 2:
        return np.full(img.shape, float(np.median(img[rim])))
    a = np.asarray(angles)
    basis = np.stack([np.ones_like(a), np.cos(a), np.sin(a)], axis=1)
    c0, c1, c2 = np.linalg.lstsq(basis, np.asarray(levels), rcond=None)[0]
    return np.clip(c0 + c1 * np.cos(theta) + c2 * np.sin(theta), min(levels), max(levels))


def _flat_field(roi: np.ndarray, ring: np.ndarray, seed: tuple[int, int], rr: float) -> np.ndarray:
    """``roi`` divided, per channel, by a plane fitted to the retina in ``ring`` (1 at ``seed``).

    Only the plane's tilt is removed, never its level, so the thresholds downstream see the
    same brightness at the disc as before. A fit that would flip or nearly zero the field
    within the region (a ring dominated by something other than retina), or one that varies
    by under 2 % across it, is not applied.
    """
    if ring.sum() < 30:
        return roi
    ys, xs = np.nonzero(ring)
    basis = np.stack([np.ones(len(ys)), ys - seed[0], xs - seed[1]], axis=1).astype(np.float64)
    yy, xx = np.mgrid[: roi.shape[0], : roi.shape[1]]
    out = roi.copy()
    for c in range(roi.shape[2]):
        closed = _close(roi[..., c], 0.5 * rr)  # vessels in the ring are not retina
        coef = np.linalg.lstsq(basis, closed[ys, xs].astype(np.float64), rcond=None)[0]
        if coef[0] <= 1e-3:
            continue
        field = 1.0 + (coef[1] * (yy - seed[0]) + coef[2] * (xx - seed[1])) / coef[0]
        if field.min() < 0.3 or np.abs(field - 1.0).max() < 0.02:
            continue  # not retina in the ring, or no tilt worth dividing out (keeps flat input exact)
        out[..., c] = roi[..., c] / field
    return out.astype(np.float32)


def find_disc_cup(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disc and cup masks of a fundus photograph (``(H, W, 3)`` floats in [0, 1]).

    Raises:
        ToolError: no field of view, or no disc-like bright region inside it.
    """
    h, w = rgb.shape[:2]
    # Coarse pass: about 320 px across, enough to locate a disc ~40 px wide.
    k = max(1, int(round(max(h, w) / 320)))
    small = downscale_local_mean(rgb, (k, k, 1)) if k > 1 else rgb
    lum = small.mean(-1)
    fov = field_of_view(lum)
    fov_diam = 2 * math.sqrt(fov.sum() / math.pi)
    r0 = 0.065 * fov_diam  # a typical disc radius relative to a 45-degree field
    if r0 < 4:
        raise ToolError(f"the field of view is too small to find an optic disc ({fov.sum()} px at 1/{k} scale)")
    inner = ndi.binary_erosion(fov, iterations=max(1, int(r0 * 0.3)))
    feature = _close(small[..., 0] + small[..., 1], 0.9 * r0)
    blob = _masked_smooth(feature, fov, r0 / 2) - _masked_smooth(feature, fov, 3 * r0)
    blob[~inner] = -np.inf
    py, px = np.unravel_index(int(np.argmax(blob)), blob.shape)

    # Fine pass: a region around the candidate, brought down (never up) to a scale where
    # the disc is about RR_WORK px in radius, so that the pixel-sized steps below (blurs,
    # erosions, gradient) mean the same on the disc whatever the photograph's resolution.
    r0_full = r0 * k
    half = int(2.4 * r0_full)
    cy_full, cx_full = int((py + 0.5) * k), int((px + 0.5) * k)
    y0, y1 = max(0, cy_full - half), min(h, cy_full + half)
    x0, x1 = max(0, cx_full - half), min(w, cx_full + half)
    roi = rgb[y0:y1, x0:x1]
    zoom = min(1.0, RR_WORK / r0_full)
    if zoom < 1.0:
        shape = (max(8, round(roi.shape[0] * zoom)), max(8, round(roi.shape[1] * zoom)))
        roi = resize(roi, shape + (3,), order=1, anti_aliasing=True).astype(np.float32)
    scale = ((y1 - y0) / roi.shape[0], (x1 - x0) / roi.shape[1])
    roi_fov = ndi.binary_erosion(field_of_view(roi.mean(-1)) if roi.mean(-1).min() < 0.05 else np.ones(roi.shape[:2], bool))
    rr = r0_full * zoom
    seed = (min(max(int((cy_full - y0) / scale[0]), 0), roi.shape[0] - 1),
            min(max(int((cx_full - x0) / scale[1]), 0), roi.shape[1] - 1))
    yy, xx = np.ogrid[: roi.shape[0], : roi.shape[1]]
    dist = np.hypot(yy - seed[0], xx - seed[1])
    ring = (dist > 1.7 * rr) & (dist < 2.3 * rr) & roi_fov
    # the fit keeps clear of the aperture's edge, whose blurred fall-off would read as a tilt
    roi = _flat_field(roi, ring & ndi.binary_erosion(roi_fov, iterations=max(2, int(0.2 * rr))), seed, rr)
    disc_img, disc_vessels = _inpaint_vessels(roi[..., 0] + roi[..., 1], rr)
    cup_img, cup_vessels = _inpaint_vessels(roi[..., 1], rr)
    disc_img, cup_img = ndi.gaussian_filter(disc_img, 1.0), ndi.gaussian_filter(cup_img, 1.0)

    # Initial split: half-way between the retina in an annulus around the candidate and the
    # candidate's centre; then re-estimate both levels next to the boundary found.
    centre = dist < 0.5 * rr
    if ring.sum() < 10 or centre.sum() < 4:
        raise ToolError("no optic disc found: the bright candidate lies at the edge of the field of view")
    t_disc = _level_threshold(disc_img, centre, ring, 0.0)
    disc = _component_at((disc_img > t_disc) & roi_fov, seed)
    # The disc edge is the strongest edge between the retina's level and the disc's: of
    # the iso-contours in that range, keep the one with the steepest mean gradient. This
    # stays on the disc margin even where a thin rim leaves no flat rim level to sample.
    # The range runs a little past half-way: on a real disc the margin is a soft ramp
    # whose steepest part can sit just above it, and with the range stopping at half-way
    # the pick fell on either side of that part as the sampled levels moved with image
    # size (the retina sample gave a rim-to-disc ratio of 0.20 or 0.09 by scale).
    gap = 2 + int(0.1 * rr)
    outside = ndi.binary_dilation(disc, iterations=gap + max(2, int(0.3 * rr))) & roi_fov
    outside &= ~ndi.binary_dilation(disc, iterations=gap)
    body = ndi.binary_erosion(disc, iterations=gap)
    if body.sum() >= 5 and outside.sum() >= 5:
        bg_level = float(np.median(disc_img[outside]))
        top = float(np.percentile(disc_img[body], 25))
        grad = ndi.gaussian_gradient_magnitude(disc_img, 1.0)
        trusted = ~ndi.binary_dilation(disc_vessels, iterations=2) & roi_fov
        t_mid = 0.5 * (bg_level + top)
        disc = _component_at((disc_img > t_mid) & roi_fov, seed)
        best = -1.0
        for t in np.linspace(bg_level + 0.2 * (top - bg_level), bg_level + 0.55 * (top - bg_level), 14):
            region = _component_at((disc_img > t) & roi_fov, seed)
            edge = region & ~ndi.binary_erosion(region) & trusted
            if edge.sum() < 8:
                continue
            score = float(grad[edge].mean())
            if score > best:
                best, t_disc, disc = score, float(t), region
    area = disc.sum()
    if area < 0.15 * math.pi * rr**2 or area > 4 * math.pi * rr**2:
        raise ToolError(
            f"no optic disc found: the brightest region is {area} px, expected about {math.pi * rr**2:.0f} px"
        )
    disc_fit = _fit(disc, ndi.binary_dilation(disc_vessels, iterations=2) | ~roi_fov)
    disc_el = _raster(disc.shape, disc_fit, (1.0, 1.0), (0, 0))

    # Cup: the brighter core inside the disc, split from the rim half-way between them.
    # Start from the outer disc (rim unless the cup is huge) and the brightest core. The
    # rim's level is modelled around the disc, not pooled: a pale temporal rim (common in
    # healthy eyes) or uneven lighting would otherwise sit above a pooled half-way level
    # and join the cup, leaving almost no rim on that side.
    smooth = np.where(disc_el, ndi.gaussian_filter(cup_img, 0.1 * rr), -np.inf)
    peak = np.unravel_index(int(np.argmax(smooth)), cup_img.shape)
    rho = _rho(disc.shape, disc_fit)
    theta = np.arctan2(yy - disc_fit[0], xx - disc_fit[1])
    outer = (rho > 0.75) & (rho < 0.92) & disc_el
    t_cup = 0.5 * (float(smooth[peak]) + _rim_level(cup_img, outer, theta)) if outer.any() else float(smooth[peak])
    cup = _component_at((cup_img > t_cup) & disc_el, peak)
    # The rim is sampled clear of the disc's blurred margin, which darkens its outer edge.
    inside = ndi.binary_erosion(disc_el, iterations=2)
    inner = ndi.binary_erosion(disc_el, iterations=2 + int(0.05 * rr))
    for _ in range(3):
        # ... and clear of the cup's soft edge, where the rim is wide enough for both.
        for gap in (max(1, int(0.15 * rr)), 1):
            far = inside & ~ndi.binary_dilation(cup, iterations=gap)
            if far.sum() >= 0.02 * disc_el.sum():
                break
        rim = far & inner if (far & inner).sum() >= 0.02 * disc_el.sum() else far
        # The cup level is sampled in its inner half, clear of its soft edge.
        core = cup & (_rho(cup.shape, _moment_fit(cup)) < 0.5) if cup.sum() >= 8 else cup
        core = core if core.sum() >= 4 else cup
        if core.sum() >= 5 and rim.sum() >= 5:
            t_cup = 0.5 * (float(np.median(cup_img[core])) + _rim_level(cup_img, rim, theta))
        cup = _component_at((cup_img > t_cup) & disc_el, peak)
    if cup.sum() < 4:
        raise ToolError("no optic cup found inside the disc (no paler core)")
    cup_fit = _fit(cup, ndi.binary_dilation(cup_vessels, iterations=2))

    disc_full = _raster((h, w), disc_fit, scale, (y0, x0))
    cup_full = _raster((h, w), cup_fit, scale, (y0, x0)) & disc_full
    return disc_full, cup_full
