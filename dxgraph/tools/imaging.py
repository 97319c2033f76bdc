"""The ``load_image`` tool: PNG/JPEG/DICOM/NIfTI images, checked, oriented, with physical
spacing, and checked against what the workflow expects of them.

Every image a workflow sees comes through ``load_image``. Reading is done by
``dxgraph.tools.image_readers`` (format sniffing, header checks before any pixel is decoded,
MONAI's readers), which refuses what it cannot trust with a one-line ``InputError`` naming the
file (missing, empty, not an image, truncated, absurdly large, wrong dimensionality). This
module then applies the workflow's expectation (``expect="fundus"`` refuses radiology
modalities, grey images without a round field of view and colour that is not red-dominant;
``expect="chest_radiograph"`` refuses CT/MR, colour pictures and icons), and renders arrays
for display (``display_array``, ``to_png_bytes``).

Orientation is normalised so downstream tools need not know the file format:

* PNG/JPEG come out ``(H, W)`` or ``(H, W, 3)`` as a person sees them (MONAI's PIL reader
  transposes to ``(W, H)`` by default; we ask it not to). Spacing is None: these files
  carry no physical size, so measurements that need millimetres say so.
* DICOM comes out ``(rows, cols)`` or ``(frames, rows, cols)`` with spacing from
  PixelSpacing and SpacingBetweenSlices/SliceThickness, in mm. Pixel values are the
  rescaled ones (Hounsfield units for CT).
* NIfTI voxel arrays ``(i, j, k)`` come out ``(k, j, i)`` so that axis 0 is the slice
  axis, with the header's voxel sizes (converted to mm) in the same order.

Sample images shipped inside installed packages are named ``sample:NAME`` and resolved to
real files by ``resolve_image_path``, so every tool downstream reads a real file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Literal

import numpy as np

from dxgraph.errors import InputError
from dxgraph.tools.data import Image
from dxgraph.tools.image_readers import MAX_FILE_BYTES, MAX_PIXELS_2D, MAX_VOXELS_3D, read_checked
from dxgraph.tools.registry import FilePath, tool

__all__ = ["SAMPLES", "resolve_image_path", "load_image", "load", "to_png_bytes", "display_array", "MAX_PIXELS_2D",
           "MAX_VOXELS_3D", "MAX_FILE_BYTES"]


SAMPLES: dict[str, str] = {
    "retina": "colour fundus photograph, CC0 (scikit-image retina.jpg)",
    "microaneurysms": "fundus crop with microaneurysms (scikit-image microaneurysms.png)",
    "ct": "CT slice with spacing (pydicom CT_small.dcm)",
    "mr": "MR slice with spacing (pydicom MR_small.dcm)",
    "nifti": "3D anatomical MR volume (nibabel tests/data/anatomical.nii)",
}

Expect = Literal["any", "2d", "3d", "color", "grey", "fundus", "chest_radiograph"]
_EXPECTS = ("any", "2d", "3d", "color", "grey", "fundus", "chest_radiograph")

# DICOM modalities a fundus photograph may carry: ophthalmic photography, external camera,
# secondary capture and "other". Anything else (CT, MR, CR, DX, US...) is not a fundus.
_FUNDUS_MODALITIES = frozenset({"", "OP", "XC", "SC", "OT"})

# DICOM modalities a chest radiograph may carry: computed and digital radiography, digitised
# film ("RG"), and exported pictures (secondary capture, "other", none).
_CHEST_MODALITIES = frozenset({"", "CR", "DX", "RG", "SC", "OT"})
# A chest radiograph is stored at 1-3 k px a side; below this it is a crop or an icon, too
# small for the lung fields' margins (the phantoms are 400 px and more at their default scale).
MIN_CHEST_SIDE = 128
# Mean red over mean green and blue within the field of view: fundus photographs (the retina
# sample, the phantoms) are above 2, a photograph of nothing in particular or noise about 1.
_FUNDUS_MIN_RED = 1.2


# ---------------------------------------------------------------- samples

def _home() -> Path:
    from dxgraph.config import load_settings

    try:
        return load_settings().home
    except Exception:  # noqa: BLE001 - a broken config must not stop a sample from resolving
        return Path(os.environ.get("DXGRAPH_HOME") or Path.home() / ".dxgraph")


def _skimage_sample(filename: str, loader: str) -> Path:
    import skimage.data

    shipped = Path(skimage.data.data_dir) / filename
    if shipped.is_file():
        return shipped
    # Newer scikit-image releases may fetch some images on demand; materialise a copy so
    # that downstream tools read a real file.
    target = _home() / "samples" / (Path(filename).stem + ".png")
    if not target.is_file():
        from PIL import Image as PILImage

        try:
            array = getattr(skimage.data, loader)()
        except Exception as exc:  # noqa: BLE001 - download failures come in many types
            raise InputError(f"sample {loader!r} is not shipped with this scikit-image and could not be "
                             f"fetched ({type(exc).__name__}); install scikit-image with its data") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.png")
        PILImage.fromarray(np.asarray(array)).save(tmp)
        tmp.replace(target)
    return target


def resolve_image_path(path: str | Path) -> Path:
    """Resolve ``sample:NAME`` to a real file shipped in an installed package; other paths pass through.

    Raises:
        InputError: an unknown sample name (the message lists the known ones).
    """
    text = str(path)
    if not text.startswith("sample:"):
        return Path(text).expanduser()
    name = text.removeprefix("sample:")
    if name == "retina":
        return _skimage_sample("retina.jpg", "retina")
    if name == "microaneurysms":
        return _skimage_sample("microaneurysms.png", "microaneurysms")
    if name in ("ct", "mr"):
        from pydicom.data import get_testdata_file

        found = get_testdata_file("CT_small.dcm" if name == "ct" else "MR_small.dcm")
        if not found:
            raise InputError(f"sample {text!r} is missing from the installed pydicom; reinstall pydicom")
        return Path(found)
    if name == "nifti":
        import nibabel

        found = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"
        if not found.is_file():
            raise InputError(f"sample {text!r} is missing from the installed nibabel; reinstall nibabel")
        return found
    known = ", ".join(f"sample:{s}" for s in SAMPLES)
    raise InputError(f"unknown sample image {text!r}; the samples are {known}")


def _describe(array: np.ndarray, spatial: int) -> str:
    shape = "x".join(map(str, array.shape))
    if spatial == 3:
        return f"a 3D volume ({shape})"
    return f"a {'colour' if array.ndim == 3 else 'grey'} 2D image ({shape})"


def _to_grey(array: np.ndarray) -> np.ndarray:
    return (array[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)


def _apply_expect(path: Path, array: np.ndarray, spatial: int, expect: str) -> tuple[np.ndarray, bool]:
    got = _describe(array, spatial)
    if expect == "3d" and spatial != 3:
        raise _bad(path, f"is {got}, but this step needs a 3D volume; give a NIfTI or multi-frame DICOM volume")
    if expect in ("2d", "color", "grey", "fundus", "chest_radiograph") and spatial != 2:
        raise _bad(path, f"is {got}, but this step needs a 2D image; give a photograph, radiograph or single slice")
    if expect == "color" and array.ndim != 3:
        raise _bad(path, f"is {got}, but this step needs a colour photograph (RGB)")
    if expect == "grey" and array.ndim == 3:
        return _to_grey(array), True
    return array, False


def _is_colour(rgb: np.ndarray) -> bool:
    """Whether an RGB picture really has colour, not a grey one saved as RGB (JPEG's chroma noise allowed)."""
    spread = np.abs(rgb - rgb[..., 1:2]).max(-1)
    return float(np.percentile(spread, 99)) > 8  # the 1 % left over covers burnt-in coloured labels


def _fov_problem(grey: np.ndarray) -> str | None:
    """Why a grey picture is not a fundus photograph, or None when it may be one.

    A fundus camera images a round field of view on a black surround. A crop from inside
    the retina has no surround and is accepted; a picture with a dark surround must show
    one near-circular bright field, without a bright rim (a CT slice is an oval body, a
    head CT a disc ringed by bright bone).
    """
    from scipy import ndimage as ndi

    step = max(1, max(grey.shape) // 512)  # the shape test needs no more than ~512 px
    g = grey[::step, ::step].astype(np.float32)
    g = np.nan_to_num(g - float(np.nanmin(g)))
    ref = float(np.percentile(g, 99))
    if ref <= 0:
        return "that is blank (one level everywhere)"
    dark = ndi.gaussian_filter(g, 2) <= 0.1 * ref
    if dark.mean() < 0.05:
        return None  # a crop from inside the field: no surround to test
    lab, n = ndi.label(~dark)
    sizes = ndi.sum_labels(~dark, lab, np.arange(1, n + 1))
    field = ndi.binary_fill_holes(lab == 1 + int(np.argmax(sizes)))
    rows, cols = np.flatnonzero(field.any(1)), np.flatnonzero(field.any(0))
    radius = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) / 2
    yy, xx = np.ogrid[: g.shape[0], : g.shape[1]]
    dist = np.hypot(yy - (rows[0] + rows[-1]) / 2, xx - (cols[0] + cols[-1]) / 2)
    circle = dist <= radius
    overlap = float((field & circle).sum() / (field | circle).sum())
    if overlap < 0.85:
        return f"whose bright area is not a round field of view ({overlap:.0%} overlap with a circle)"
    inner = g[(dist < 0.5 * radius) & field]
    rim = g[(dist > 0.85 * radius) & (dist < 0.97 * radius) & field]
    if inner.size and rim.size and float(rim.mean()) > 1.5 * max(float(np.median(inner)), 1e-6):
        return "with a bright rim around its round field (like bone around a head CT)"
    return None


def _check_fundus(path: Path, array: np.ndarray, meta: dict) -> None:
    fmt = meta.get("format")
    if fmt == "nifti":
        raise _bad(path, "is a NIfTI volume slice, not a fundus photograph; give the photograph as JPEG, PNG or DICOM")
    modality = str(meta.get("modality") or "").upper()
    if fmt == "dicom" and modality not in _FUNDUS_MODALITIES:
        raise _bad(path, f"is a DICOM of modality {modality!r}, not a fundus photograph (modality 'OP'); "
                         "give a colour fundus photograph or its green channel")
    if array.ndim == 3:
        rgb = array[..., :3]
        if float(np.abs(rgb - rgb[..., 1:2]).max()) > 2:
            _check_fundus_colour(path, rgb)
            return
        array = rgb[..., 1]  # three equal channels: a grey picture saved as RGB
    problem = _fov_problem(array)
    if problem:
        raise _bad(path, f"is a grey image {problem}, so it does not look like a fundus photograph; give a colour "
                         "fundus photograph, or its green channel with the field of view's black surround")


def _check_fundus_colour(path: Path, rgb: np.ndarray) -> None:
    # The retina seen through the pupil is red-orange: red well above green and blue over the
    # field of view (the pixels brighter than a tenth of the brightest; the surround is black).
    step = max(1, max(rgb.shape[:2]) // 512)
    small = rgb[::step, ::step].astype(np.float32)
    grey = _to_grey(small)
    field = grey > 0.1 * max(float(np.percentile(grey, 99)), 1e-6)
    r, g, b = (float(small[..., c][field].mean()) if field.any() else 0.0 for c in range(3))
    if r < _FUNDUS_MIN_RED * max(g, b, 1e-6):
        raise _bad(path, f"is a colour image that is not red-dominant (mean red {r:.0f}, green {g:.0f}, blue {b:.0f} "
                         "over the bright area), so it does not look like a fundus photograph; give a colour "
                         "fundus photograph")


def _check_chest(path: Path, array: np.ndarray, meta: dict) -> np.ndarray:
    """The grey radiograph, or InputError when the picture cannot be a frontal chest radiograph."""
    fmt = meta.get("format")
    want = "give a frontal chest radiograph (DICOM CR/DX, or a grey PNG/JPEG export)"
    if fmt == "nifti":
        raise _bad(path, f"is a NIfTI volume slice, not a chest radiograph; {want}")
    modality = str(meta.get("modality") or "").upper()
    if fmt == "dicom" and modality not in _CHEST_MODALITIES:
        raise _bad(path, f"is a DICOM of modality {modality!r}, not a chest radiograph (modality 'CR' or 'DX'); {want}")
    if array.ndim == 3:
        if _is_colour(array[..., :3]):
            shape = "x".join(map(str, array.shape))
            raise _bad(path, f"is a colour picture ({shape}), not a chest radiograph, which is grey; {want}")
        array = _to_grey(array)
    h, w = array.shape
    if min(h, w) < MIN_CHEST_SIDE:
        raise _bad(path, f"is {w}x{h} px, too small to be a chest radiograph (at least {MIN_CHEST_SIDE} px a side "
                         f"is needed); {want}")
    finite = array[np.isfinite(array)]
    if finite.size == 0 or float(finite.max()) <= float(finite.min()):
        raise _bad(path, f"is blank (one level everywhere), not a chest radiograph; {want}")
    return array


def _bad(path: Path, what: str) -> InputError:
    return InputError(f"image {str(path)!r} {what}")


# ---------------------------------------------------------------- the tool

@tool(version="1")
def load_image(path: FilePath, expect: Expect = "any") -> Image:
    """Load a PNG, JPEG, DICOM or NIfTI image with its physical spacing, checked for use.

    Pixel values are kept as stored (0-255 for photographs, rescaled units such as HU for
    DICOM); only the layout is normalised: ``(H, W)``, ``(H, W, 3)`` or ``(D, H, W)``.

    Args:
        path: the image file, or ``sample:NAME`` for an image shipped with an installed package.
        expect: what the next step needs: ``any``, ``2d``, ``3d``, ``color``, ``grey`` or
            ``fundus`` (a 2D fundus photograph, colour or grey: radiology DICOMs and grey
            pictures without a round field of view or colour ones that are not red-dominant are
            refused) or ``chest_radiograph`` (a grey 2D radiograph at least 128 px a side:
            other DICOM modalities, colour photographs and icons are refused). A grey picture
            saved as RGB is converted to grey by luminance for ``grey`` and
            ``chest_radiograph``, any colour image for ``grey``; other mismatches are errors.
    """
    if expect not in _EXPECTS:
        raise InputError(f"expect must be one of {', '.join(_EXPECTS)}; got {expect!r}")
    p = resolve_image_path(path)
    array, spacing, meta, colour = read_checked(p)
    spatial = 2 if array.ndim == 2 or colour else 3
    if array.ndim not in (2, 3) or (spatial == 2 and array.ndim == 3 and array.shape[-1] != 3):
        raise _bad(p, f"has an unsupported layout {array.shape}; give a 2D image or a 3D volume")
    if spatial == 3:
        meta["layout"] = "volume"
    array, greyed = _apply_expect(p, array, spatial, expect)
    if expect == "fundus":
        _check_fundus(p, array, meta)
    if expect == "chest_radiograph":
        colour_in = array.ndim == 3
        array = _check_chest(p, array, meta)
        greyed = colour_in
    if greyed:
        meta["converted"] = "colour to grey (luminance)"
    return Image(array=np.ascontiguousarray(array, dtype=np.float32), spacing=spacing, source=str(path), meta=meta)


def load(path_or_sample: str | Path, expect: Expect = "any") -> Image:
    """Load an image file or ``sample:NAME`` outside a workflow (scripts, the UI, tests)."""
    return load_image(FilePath(str(resolve_image_path(path_or_sample))), expect)


# ---------------------------------------------------------------- PNG for people and VLMs

def _window(array: np.ndarray, window: list[float] | None) -> np.ndarray:
    finite = np.isfinite(array)
    all_finite = bool(finite.all())
    if not all_finite and not finite.any():
        return np.zeros(array.shape, np.uint8)
    values = array.ravel() if all_finite else array[finite]
    if window is not None:
        lo, hi = window[0] - window[1] / 2, window[0] + window[1] / 2
    elif values.min() >= 0 and values.max() <= 255 and np.all(np.mod(values[:4096], 1) == 0):
        lo, hi = 0.0, 255.0  # an 8-bit photograph: keep its own brightness
    else:
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    if hi <= lo:
        hi = lo + 1.0
    scaled = ((array if all_finite else np.where(finite, array, lo)) - lo) * (255.0 / (hi - lo))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def display_array(image_or_array: Image | np.ndarray) -> np.ndarray:
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` picture of an image, windowed to 0-255.

    A volume is shown by its middle slice along axis 0. DICOM window settings are used
    when the header has them; otherwise 8-bit photographs keep their levels and anything
    else is stretched between its 0.5th and 99.5th percentiles.
    """
    if isinstance(image_or_array, Image):
        array = np.asarray(image_or_array.array)
        window = image_or_array.meta.get("window")
        volume = image_or_array.ndim_spatial == 3
    else:
        array = np.asarray(image_or_array)
        window = None
        volume = array.ndim == 3 and array.shape[-1] not in (3, 4)
    if volume:
        array = array[array.shape[0] // 2]
    if array.ndim == 3:
        array = array[..., :3]
    if array.ndim not in (2, 3):
        raise InputError(f"cannot display an array of shape {array.shape}; give a 2D image or a 3D volume")
    return _window(array.astype(np.float32), window)


def to_png_bytes(image_or_array: Image | np.ndarray) -> bytes:
    """PNG bytes of an image for a VLM or a page: grey or RGB, windowed as ``display_array`` does.

    Compressed lightly: a 2 Mpx photograph encodes in a third of a second instead of 1.3 s.
    """
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(display_array(image_or_array)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
