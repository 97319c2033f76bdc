"""Peak RSS and time of ``load_image`` on the largest images it accepts, and on the issue-16 bomb.

    .venv/bin/python benchmarks/image_memory.py [--only NAME]

Each image is written to a temporary folder, then loaded in a fresh process (so the peak is
that load's, with the readers' imports included) under the default memory budget
(``DXGRAPH_IMAGE_MEMORY_MB`` unset: 1024). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import resource, sys, time
from dxgraph.tools.imaging import load
t = time.perf_counter()
try:
    img = load(sys.argv[1], sys.argv[2])
    out = f"accepted {'x'.join(map(str, img.array.shape))}" + (" (downscaled)" if "downscaled" in img.meta else "")
except Exception as exc:
    out = f"refused: {type(exc).__name__}"
print(f"{out}|{time.perf_counter() - t:.1f}|{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
"""


def _make(folder: Path) -> list[tuple[str, Path, str]]:
    import nibabel as nib
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    path = folder / "blank9400.png"  # the 258 KB, 9400x9400 PNG
    Image.new("RGB", (9400, 9400), (0, 0, 0)).save(path, compress_level=9)
    rows.append(("9400x9400 blank RGB PNG (issue 16)", path, "fundus"))
    path = folder / "rgb5400.png"  # the largest colour photograph kept whole: 5400^2 x 3 x 4 B x 3 < 1 GiB
    a = np.zeros((5400, 5400, 3), np.uint8)
    a[..., 0] = rng.integers(100, 255, (5400, 5400))
    a[..., 1] = 40
    Image.fromarray(a).save(path, compress_level=1)
    rows.append(("5400x5400 RGB PNG, largest kept whole", path, "fundus"))
    path = folder / "vol340.nii"  # the largest volume accepted at 512x512 in-plane
    v = np.zeros((512, 512, 340), np.uint8)
    v[100:400, 100:400, 100:300] = 50
    nib.save(nib.Nifti1Image(v, np.eye(4)), str(path))
    rows.append(("512x512x340 NIfTI, largest accepted", path, "any"))
    path = folder / "vol512.nii"
    v = np.zeros((512, 512, 512), np.uint8)
    nib.save(nib.Nifti1Image(v, np.eye(4)), str(path))
    rows.append(("512x512x512 NIfTI", path, "any"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only images whose description contains this")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "DXGRAPH_IMAGE_MEMORY_MB"} | {"PYTHONPATH": str(ROOT)}
    print("| image | expect | result | seconds | peak RSS (MB) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, path, expect in _make(Path(tmp)):
            if args.only and args.only not in label:
                continue
            out = subprocess.run([sys.executable, "-c", _CHILD, str(path), expect], capture_output=True, text=True,
                                 env=env, timeout=600).stdout.strip().splitlines()[-1]
            result, seconds, rss = out.split("|")
            print(f"| {label} | {expect} | {result} | {seconds} | {rss} |")


if __name__ == "__main__":
    main()
