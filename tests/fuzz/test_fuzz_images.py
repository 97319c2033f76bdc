"""Bad image files: every one is loaded or refused with one InputError line, never another
exception, within the memory budget."""

import gzip
import io
import random
import struct
import tracemalloc
import zlib

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from dxgraph.errors import InputError
from dxgraph.tools.imaging import load

SEED = 16
BUDGET_MB = 64


def _png(size=(64, 48), mode="RGB") -> bytes:
    buf = io.BytesIO()
    PILImage.new(mode, size, 120).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (64, 48), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring any size, with a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _nifti() -> bytes:
    img = nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4))
    return img.to_bytes()


def _files() -> list[tuple[str, bytes]]:
    rng = random.Random(SEED)
    good = {".png": _png(), ".jpg": _jpeg(), ".nii": _nifti()}
    out: list[tuple[str, bytes]] = [
        ("empty.png", b""), ("text.png", b"hello\n"), ("shadow.dcm", b"root:x:0:0\n"), ("zero.png", b"\0" * 600),
        ("huge.png", _png_declaring(60000, 60000)), ("wide.png", _png_declaring(2**31 - 1, 1)),
        ("zero-width.png", _png_declaring(0, 10)), ("big-ok-header.png", _png_declaring(9400, 9400)),
        ("gz.nii.gz", gzip.compress(b"not a nifti" * 50)), ("bad-gz.nii.gz", b"\x1f\x8b" + b"\0" * 100),
        ("dicm.dcm", b"\0" * 128 + b"DICM" + bytes(rng.randrange(256) for _ in range(400))),
        ("folder-like.jpg", b"\xff\xd8\xff" + b"\0" * 20),
    ]
    for k in range(60):
        suffix = rng.choice(list(good))
        data = bytearray(good[suffix])
        kind = k % 4
        if kind == 0:  # truncated
            data = data[: rng.randrange(1, len(data))]
        elif kind == 1:  # bytes flipped
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 2:  # garbage appended to a cut header
            data = data[: rng.randrange(8, 64)] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
        else:  # random bytes under the right name
            data = bytearray(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        out.append((f"m{k}{suffix}", bytes(data)))
    return out


FILES = _files()


@pytest.fixture(scope="module", autouse=True)
def _readers_imported(tmp_path_factory):
    """Import the readers once: importing MONAI allocates ~270 MB that is no image's doing."""
    path = tmp_path_factory.mktemp("warm") / "ok.nii"
    path.write_bytes(_nifti())
    load(str(path))


@pytest.mark.parametrize("name, data", FILES, ids=[f[0] for f in FILES])
def test_a_bad_image_is_one_input_error_within_the_memory_budget(tmp_path, monkeypatch, name, data):
    monkeypatch.setenv("DXGRAPH_IMAGE_MEMORY_MB", str(BUDGET_MB))
    path = tmp_path / name
    path.write_bytes(data)
    tracemalloc.start()
    try:
        load(str(path))
    except InputError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < BUDGET_MB * 2**20
