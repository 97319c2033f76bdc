"""Microaneurysms on a fundus photograph: small, dark, round dots.

Microaneurysms show best in the green channel, as dark dots a few pixels across. A black
top-hat (closing minus image) with a window a little larger than the largest dot keeps
dark details narrower than the window: dots and thin vessels. Thresholding that against
the image's own noise gives candidates; vessels are then told apart by shape (long,
elongated components) and any dot touching a vessel is dropped, since a vessel's end or
crossing looks like a dot. Larger blots (haemorrhages) fail the size limit.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops

__all__ = ["find_microaneurysms"]


def find_microaneurysms(green: np.ndarray, min_radius: float, max_radius: float) -> np.ndarray:
    """Boolean mask of microaneurysm candidates in a green-channel (or grey) image.

    Args:
        green: ``(H, W)`` floats; the green channel of a fundus photograph.
        min_radius: smallest dot radius in pixels to keep.
        max_radius: largest dot radius in pixels to keep.
    """
    img = green.astype(np.float32)
    fov = ndi.gaussian_filter(img, 2) > 0.1 * float(np.percentile(img, 99))
    fov = ndi.binary_erosion(ndi.binary_fill_holes(fov), iterations=int(3 * max_radius) + 2)
    if fov.sum() < 0.05 * img.size:
        fov = np.ones_like(fov)  # a crop from inside the retina: no dark surround
    # Local normalisation makes the contrast relative, so uneven illumination does not matter.
    wide = int(6 * max_radius) | 1
    closed_wide = ndi.grey_closing(img, size=(wide, wide))
    background = ndi.uniform_filter(closed_wide, wide)
    rel = img / np.maximum(background, 1e-3)
    sigma = max(0.7, 0.4 * min_radius)
    smooth = ndi.gaussian_filter(rel, sigma)
    side = int(2 * max_radius + 3) | 1
    tophat = ndi.grey_closing(smooth, size=(side, side)) - smooth
    # The level is set by the top-hat's own spread over the field (noise and texture at
    # the dots' scale): most of the field holds neither dots nor vessels.
    values = tophat[fov]
    med = float(np.median(values))
    level = max(med + 6 * 1.4826 * float(np.median(np.abs(values - med))), 0.06)
    candidates = (tophat > level) & fov
    # A wider top-hat at half the level finds the vessels, including those broader than
    # the dot window and the faint thin ends whose fragments would pass for dots.
    vessel_map = ((ndi.grey_closing(smooth, size=(wide, wide)) - smooth) > 0.5 * level) & fov
    max_area = math.pi * (max_radius + 1) ** 2
    min_area = max(3.0, 0.6 * math.pi * min_radius**2)
    max_len = 2 * max_radius + 2
    # Vessels are the long pieces of the map; compact ones (dots, blots) are not.
    vlab, _ = ndi.label(vessel_map)
    vessels = np.zeros(img.shape, bool)
    for props in regionprops(vlab):
        if props.area >= min_area and props.axis_major_length > 1.5 * max_len:
            vessels[props.slice] |= vlab[props.slice] == props.label
    near_vessel = ndi.binary_dilation(vessels, iterations=2)

    lab, _ = ndi.label(candidates)
    out = np.zeros(img.shape, bool)
    for props in regionprops(lab):
        if props.area > max_area or props.area < min_area or props.axis_major_length > max_len:
            continue  # a blot, a vessel piece, or noise
        if props.axis_major_length > 2.0 * max(props.axis_minor_length, 1.0):
            continue  # elongated: a vessel fragment
        region = lab[props.slice] == props.label
        if (region & near_vessel[props.slice]).any():
            continue  # a vessel's end or crossing, not a dot
        out[props.slice] |= region
    return out
