"""Reading image files safely: format sniffing, header checks before decoding, MONAI readers.

Split from ``imaging`` so that the tool module stays readable. Everything here raises
``InputError`` with a one-line message naming the file; no reader exception escapes.
See ``dxgraph.tools.imaging`` for the orientation and spacing conventions.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dxgraph.errors import InputError

__all__ = ["MAX_PIXELS_2D", "MAX_VOXELS_3D", "MAX_FILE_BYTES", "read_checked", "memory_budget", "estimate_bytes"]

MAX_PIXELS_2D = 100_000_000
MAX_VOXELS_3D = 512**3
MAX_FILE_BYTES = 200 * 1024 * 1024
# Memory one image may take while it is loaded and checked, before any pixel is decoded:
# the float32 array times how many copies load_image and its checks hold at once (measured:
# ~3x for a colour photograph with expect=fundus and for a NIfTI volume through MONAI).
_DEFAULT_MEMORY_MB = 1024
_GREY_MODES = frozenset({"L", "LA", "1", "I", "F", "I;16", "I;16B", "I;16L"})
_Format = Literal["png", "jpeg", "dicom", "nifti"]
_SUFFIXES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".dcm": "dicom", ".dicom": "dicom",
             ".nii": "nifti", ".gz": "nifti"}
_NAMES = {"png": "PNG", "jpeg": "JPEG", "dicom": "DICOM", "nifti": "NIfTI"}
_SUPPORTED = "PNG, JPEG, DICOM (.dcm) or NIfTI (.nii, .nii.gz)"

# ---------------------------------------------------------------- format and header checks

def _content_kind(head: bytes) -> str:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised binary data"
    return "text" if text.isprintable() or all(c.isprintable() or c.isspace() for c in text) else "binary data"


def _sniff(path: Path, head: bytes) -> _Format | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[128:132] == b"DICM":
        return "dicom"
    if len(head) >= 348 and (int.from_bytes(head[:4], "little") in (348, 540)
                             or int.from_bytes(head[:4], "big") in (348, 540)):
        if head[344:348] in (b"n+1\0", b"ni1\0") or head[4:8] in (b"n+2\0", b"ni2\0"):
            return "nifti"
    if head.startswith(b"\x1f\x8b") and path.name.lower().endswith(".nii.gz"):
        return "nifti"
    if path.suffix.lower() in (".dcm", ".dicom") and len(head) >= 8:
        return "dicom"  # DICOM without its 128-byte preamble; pydicom decides
    return None


def _bad(path: Path, what: str) -> InputError:
    return InputError(f"image {str(path)!r} {what}")


def _check_pil_header(path: Path) -> tuple[int, int, str]:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as im:
                width, height = im.size
                mode = im.mode
                if im.format == "PNG":
                    im.verify()  # CRC of every chunk: catches truncation before decoding
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise _bad(path, f"declares more than {MAX_PIXELS_2D // 1_000_000} Mpx; refusing to decode it "
                         "(resize it or crop the region of interest)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _bad(path, f"is corrupt or truncated ({_reason(exc)}); re-export or re-download it") from None
    if width * height > MAX_PIXELS_2D:
        raise _bad(path, f"is {width}x{height} pixels, over the {MAX_PIXELS_2D // 1_000_000} Mpx limit; "
                         "resize it or crop the region of interest")
    if width == 0 or height == 0:
        raise _bad(path, "has no pixels (0 width or height)")
    return height, width, mode


def _check_nifti_header(path: Path) -> Any:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        shape = tuple(int(s) for s in img.shape)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad headers
        raise _bad(path, f"is not a readable NIfTI file ({_reason(exc)}); re-export it") from None
    spatial = shape[:3]
    if any(s > 1 for s in shape[3:]):
        raise _bad(path, f"is a {len(shape)}D series {shape}; give one 3D volume (split the time points first)")
    if int(np.prod(spatial)) > MAX_VOXELS_3D:
        raise _bad(path, f"declares {'x'.join(map(str, spatial))} voxels, over the 512^3 limit; crop or resample it")
    if int(np.prod(spatial)) == 0:
        raise _bad(path, "has no voxels")
    return img.header


def _check_dicom_header(path: Path) -> Any:
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for bad files
        raise _bad(path, f"is not a readable DICOM file ({_reason(exc)}); re-export it") from None
    if "Rows" not in ds or "Columns" not in ds:
        raise _bad(path, "is a DICOM file without an image (no Rows/Columns); give an image series file")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    n = int(ds.Rows) * int(ds.Columns) * frames
    if (frames > 1 and n > MAX_VOXELS_3D) or (frames == 1 and n > MAX_PIXELS_2D):
        raise _bad(path, f"declares {frames}x{ds.Rows}x{ds.Columns} pixels, over the size limit; crop it")
    return ds


def memory_budget() -> int:
    """Bytes one image may take while loading: ``DXGRAPH_IMAGE_MEMORY_MB`` (default 1024)."""
    raw = os.environ.get("DXGRAPH_IMAGE_MEMORY_MB", "").strip()
    try:
        mb = int(raw) if raw else _DEFAULT_MEMORY_MB
    except ValueError:
        raise InputError(f"DXGRAPH_IMAGE_MEMORY_MB={raw!r} is not a whole number of megabytes") from None
    if mb < 16:
        raise InputError(f"DXGRAPH_IMAGE_MEMORY_MB={mb} is below 16 MB; no medical image fits")
    return mb * 2**20


_COPIES = 3


def estimate_bytes(values: int) -> int:
    """Peak bytes to load ``values`` pixel values (pixels x channels) as float32 and check them."""
    return values * 4 * _COPIES


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _too_big(path: Path, need: int, budget: int) -> InputError:
    return _bad(path, f"would take about {_size(need)} of memory to load, over the {_size(budget)} "
                      "budget (DXGRAPH_IMAGE_MEMORY_MB); crop or resample it")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# ---------------------------------------------------------------- readers

_quiet_lock = threading.Lock()


@lru_cache(maxsize=None)
def _loader(fmt: _Format) -> Any:
    # LoadImage registers every default reader when built, and the DICOM GPU reader logs a
    # warning on CPU machines; build each loader once, quietly.
    with _quiet_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plugin_log = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
        level = plugin_log.level
        plugin_log.setLevel(logging.ERROR)
        try:
            from monai.data import NibabelReader, PILReader, PydicomReader
            from monai.transforms import LoadImage

            reader = {
                "png": lambda: PILReader(converter=_pil_convert, reverse_indexing=False),
                "jpeg": lambda: PILReader(converter=_pil_convert, reverse_indexing=False),
                "dicom": lambda: PydicomReader(swap_ij=False, prune_metadata=True),
                "nifti": lambda: NibabelReader(),
            }[fmt]()
            return LoadImage(reader=reader, image_only=False, dtype=np.float32)
        finally:
            plugin_log.setLevel(level)


def _pil_convert(im: Any) -> Any:
    if im.mode in ("RGB", "L", "I", "F", "I;16", "I;16B", "I;16L"):
        return im
    if im.mode in ("LA", "1"):
        return im.convert("L")
    return im.convert("RGB")  # palette, RGBA, CMYK, YCbCr: as displayed, alpha dropped


def _read_pil(path: Path, reduce: int = 1) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        if reduce > 1 and im.format == "JPEG":
            im.draft(im.mode, (im.width // reduce, im.height // reduce))  # decode at 1/2, 1/4, 1/8 scale
        im.load()
        im = _pil_convert(im)
        if reduce > 1:
            factor = max(1, round(reduce * im.width / _pil_full_width(path)))
            im = im.reduce(factor) if factor > 1 else im
        return np.asarray(im, dtype=np.float32)


def _pil_full_width(path: Path) -> int:
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        return im.width


def _read(path: Path, fmt: _Format, reduce: int = 1) -> tuple[np.ndarray, dict[str, Any]]:
    # PNG/JPEG are read with PIL directly: the pixels are exactly what MONAI's PILReader
    # returns (tested), but `import monai` costs 4-12 s of start-up (it imports all its
    # submodules, transformers included), which would dominate every fundus or chest run.
    # DICOM and NIfTI, where MONAI's readers earn their keep (spacing, orientation), use it.
    try:
        if fmt in ("png", "jpeg"):
            return _read_pil(path, reduce), {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, meta = _loader(fmt)(str(path))
        array = np.asarray(data.detach().cpu().numpy() if hasattr(data, "detach") else data, dtype=np.float32)
    except MemoryError:
        raise _bad(path, "does not fit in memory; crop or resample it") from None
    except Exception as exc:  # noqa: BLE001 - every reader failure becomes one clear line
        cause = exc.__cause__ or exc
        raise _bad(path, f"could not be read as {_NAMES[fmt]} ({_reason(cause)}); "
                         "the file may be truncated or corrupt: re-export it") from None
    return array, dict(meta)


def _nifti_mm(header: Any) -> float:
    units = header.get_xyzt_units()[0]
    return {"meter": 1000.0, "micron": 0.001}.get(units, 1.0)  # "mm" or "unknown": mm by convention


def _positive(values: list[float]) -> tuple[float, ...] | None:
    return tuple(values) if values and all(np.isfinite(v) and v > 0 for v in values) else None


def _dicom_spacing(ds: Any, ndim: int) -> tuple[float, ...] | None:
    def first(*names: str, source: Any = ds) -> Any:
        for name in names:
            if name in source and source.get(name) not in (None, ""):
                return source.get(name)
        return None

    in_plane = first("PixelSpacing")
    slice_gap = first("SpacingBetweenSlices", "SliceThickness")
    shared = first("SharedFunctionalGroupsSequence")
    if shared and "PixelMeasuresSequence" in shared[0]:
        measures = shared[0].PixelMeasuresSequence[0]
        in_plane = in_plane or first("PixelSpacing", source=measures)
        slice_gap = slice_gap or first("SpacingBetweenSlices", "SliceThickness", source=measures)
    offsets = first("GridFrameOffsetVector")
    if slice_gap is None and offsets is not None and len(offsets) > 1:
        slice_gap = abs(float(offsets[1]) - float(offsets[0]))
    if in_plane is None or len(in_plane) != 2:
        return None
    rows_cols = [float(in_plane[0]), float(in_plane[1])]
    if ndim == 2:
        return _positive(rows_cols)
    return _positive([float(slice_gap), *rows_cols]) if slice_gap is not None else None


def _dicom_meta(ds: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key in ("Modality", "Manufacturer", "BodyPartExamined", "PhotometricInterpretation"):
        value = ds.get(key)
        if value not in (None, ""):
            meta[key.lower()] = str(value)
    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centre is not None and width is not None:
        pick = (lambda v: float(v[0]) if hasattr(v, "__len__") and not isinstance(v, str) else float(v))
        meta["window"] = [pick(centre), pick(width)]
    return meta


def _orient(path: Path, fmt: _Format, array: np.ndarray, header: Any) -> tuple[np.ndarray, tuple[float, ...] | None, dict]:
    meta: dict[str, Any] = {"format": fmt}
    if fmt in ("png", "jpeg"):
        if array.ndim == 3 and array.shape[-1] == 4:
            array = array[..., :3]
        return array, None, meta
    if fmt == "dicom":
        meta |= _dicom_meta(header)
        rows, cols = int(header.Rows), int(header.Columns)
        frames = int(header.get("NumberOfFrames", 1) or 1)
        colour = int(header.get("SamplesPerPixel", 1) or 1) == 3
        if array.ndim >= 3 and array.shape[:2] == (rows, cols) and not colour and array.shape[2] == frames:
            array = np.moveaxis(array, 2, 0)  # (rows, cols, frames) -> (frames, rows, cols)
        if frames > 1 and colour:
            raise _bad(path, "is a multi-frame colour DICOM; give a single frame or a grey volume")
        spatial = 2 if frames == 1 else 3
        spacing = _dicom_spacing(header, spatial)
        if spacing is None:
            meta["spacing_note"] = "no PixelSpacing/slice spacing in the DICOM header: sizes in pixels only"
        return array, spacing, meta
    zooms = [float(z) * _nifti_mm(header) for z in header.get_zooms()[:3]]
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    zooms = zooms[: array.ndim]
    array = np.transpose(array, tuple(range(array.ndim))[::-1])  # (i, j, k) -> (k, j, i)
    spacing = _positive(zooms[::-1])
    if array.ndim == 3 and array.shape[0] == 1:
        array, spacing = array[0], spacing[1:] if spacing else None
    return array, spacing, meta


def read_checked(p: Path) -> tuple[np.ndarray, tuple[float, ...] | None, dict[str, Any], bool]:
    """Check and read one image file: its oriented float32 array, spacing, header facts, and whether it is colour.

    Raises:
        InputError: the file is missing, empty, too big, not an image, corrupt or truncated.
    """
    if not p.exists():
        raise _bad(p, "does not exist; check the path (or use sample:retina, sample:ct...)")
    if p.is_dir():
        raise _bad(p, "is a folder; give one image file (convert a DICOM series folder to NIfTI first)")
    if not p.is_file():
        raise _bad(p, "is not a regular file; give an image file")
    size = p.stat().st_size
    if size == 0:
        raise _bad(p, "is empty (0 bytes); re-export or re-download it")
    if size > MAX_FILE_BYTES:
        raise _bad(p, f"is {size / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit; crop or compress it")
    with p.open("rb") as fh:
        head = fh.read(512)
    fmt = _sniff(p, head)
    if fmt is None:
        claimed = _SUFFIXES.get(p.suffix.lower())
        if claimed:
            raise _bad(p, f"is named like a {_NAMES[claimed]} file but holds {_content_kind(head)}; "
                          f"give a real {_NAMES[claimed]} image")
        raise _bad(p, f"is not a supported image ({_content_kind(head)}); give a {_SUPPORTED} file")
    if fmt == "nifti" and head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(p, "rb") as fh:
                inner = fh.read(352)
        except (OSError, EOFError) as exc:
            raise _bad(p, f"is a damaged gzip file ({_reason(exc)}); re-export it") from None
        if _sniff(Path("x.nii"), inner) != "nifti":
            raise _bad(p, "is gzip-compressed but not a NIfTI image; give a .nii or .nii.gz volume")
    header: Any = None
    budget, reduce = memory_budget(), 1
    if fmt in ("png", "jpeg"):
        height, width, mode = _check_pil_header(p)
        need = estimate_bytes(height * width * (1 if mode in _GREY_MODES else 3))
        if need > budget:  # a photograph has no physical spacing to keep: downscale, and say so
            reduce = math.ceil(math.sqrt(need / budget))
    elif fmt == "nifti":
        header = _check_nifti_header(p)
        need = estimate_bytes(int(np.prod(header.get_data_shape()[:3])))
    else:
        header = _check_dicom_header(p)
        frames = int(header.get("NumberOfFrames", 1) or 1)
        samples = int(header.get("SamplesPerPixel", 1) or 1)
        need = estimate_bytes(int(header.Rows) * int(header.Columns) * frames * samples)
    if need > budget and fmt not in ("png", "jpeg"):  # downscaling would change the spacing: refuse
        raise _too_big(p, need, budget)
    array, _ = _read(p, fmt, reduce)
    array, spacing, meta = _orient(p, fmt, array, header)
    if reduce > 1:
        meta["downscaled"] = (f"decoded at 1/{reduce} scale ({array.shape[1]}x{array.shape[0]} px): the full "
                              f"image would need ~{_size(need)}, over the {_size(budget)} budget")
    colour = fmt in ("png", "jpeg") or (fmt == "dicom" and int(header.get("SamplesPerPixel", 1) or 1) == 3)
    return array, spacing, meta, colour
