"""Robustness of the fundus measurements: image perturbations and a second phantom family.

Measurement agreement on **synthetic phantoms** (plus the real CC0 photograph for
consistency), not diagnostic accuracy. Phantoms come from a held-out seed (>= 20000; the
segmenters were tuned on seeds < 1000).

1. Perturbations of each held-out glaucoma phantom: Gaussian blur, JPEG quality, resize
   (0.35-1.0), additive noise, an illumination gradient, small rotation, a crop. Per level:
   vCDR MAE against the truth, rim/disc MAE, balanced accuracy of vCDR >= 0.6, failures.
   Rotation turns the drawn ellipses, so its truth shifts by up to ~0.01.
2. The same perturbations on the real CC0 photograph ``skimage.data.retina()``: no truth,
   so the spread (min-max) of the measured vCDR across levels.
3. Phantom family b (``dxgraph phantoms generate --family b``), never used in tuning: oval
   and tilted discs, peripapillary atrophy, pigmentation and tessellation, another vessel
   tree; as generated and under a few of the perturbations above. The older derived family
   (family-a phantoms stretched or re-tinted) is kept for comparison.
4. Diabetic retinopathy negatives with lesion mimics: family b's own (drusen at the macula,
   reflections beside vessels, pigment clumps) and mimics painted on family-a negatives.

    python benchmarks/perturbation_robustness.py --n 30 --seed 20000
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage as ndi

from dxgraph.errors import DxGraphError
from dxgraph.phantoms import generate
from dxgraph.tools.data import Image
from dxgraph.tools.measurement import lesion_count, rim_to_disc_ratio, vertical_cup_to_disc_ratio
from dxgraph.tools.segmentation import segment_microaneurysms, segment_optic_disc_cup


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def blur(a, s):
    return _u8(ndi.gaussian_filter(a.astype(np.float32), sigma=(s, s, 0)))


def jpeg(a, q):
    buf = io.BytesIO()
    PILImage.fromarray(a).save(buf, format="JPEG", quality=q)
    return np.asarray(PILImage.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def resize(a, f):
    h, w = a.shape[:2]
    return np.asarray(PILImage.fromarray(a).resize((max(1, round(w * f)), max(1, round(h * f))), PILImage.BICUBIC))


def noise(a, s, rng):
    return _u8(a.astype(np.float32) + rng.normal(0, s, a.shape))


def gradient(a, amp):
    h, w = a.shape[:2]
    ramp = 1.0 - amp / 2 + amp * np.linspace(0, 1, w)[None, :, None]  # darker left, brighter right
    return _u8(a.astype(np.float32) * ramp)


def rotate(a, deg):
    return np.asarray(PILImage.fromarray(a).rotate(deg, resample=PILImage.BICUBIC))


def crop(a, frac):
    h, w = a.shape[:2]
    dy, dx = int(h * frac / 2), int(w * frac / 2)
    return a[dy:h - dy, dx:w - dx]


def stretch(a, fx):
    h, w = a.shape[:2]
    return np.asarray(PILImage.fromarray(a).resize((max(1, round(w * fx)), h), PILImage.BICUBIC))


def pigment(a, gains):
    return _u8(a.astype(np.float32) * np.asarray(gains, np.float32)[None, None, :])


LEVELS = [("none", lambda a, r: a)]
LEVELS += [(f"blur sigma {s}", lambda a, r, s=s: blur(a, s)) for s in (1, 2, 3)]
LEVELS += [(f"JPEG q{q}", lambda a, r, q=q: jpeg(a, q)) for q in (90, 60, 30)]
LEVELS += [(f"resize {f}x", lambda a, r, f=f: resize(a, f)) for f in (0.35, 0.5, 0.75)]
LEVELS += [("resize 0.5x + JPEG q60", lambda a, r: jpeg(resize(a, 0.5), 60))]
LEVELS += [(f"noise sigma {s}", lambda a, r, s=s: noise(a, s, r)) for s in (5, 10)]
LEVELS += [(f"illumination gradient {int(p * 100)}%", lambda a, r, p=p: gradient(a, p)) for p in (0.3, 0.6)]
LEVELS += [(f"rotation {d} deg", lambda a, r, d=d: rotate(a, d)) for d in (5, 10)]
LEVELS += [("crop 10%", lambda a, r: crop(a, 0.10))]

FAMILY = [("oval disc 0.8x wide", lambda a, r: stretch(a, 0.8)), ("oval disc 1.25x wide", lambda a, r: stretch(a, 1.25)),
          ("dark pigmentation", lambda a, r: pigment(a, (0.7, 0.6, 0.6))),
          ("light pigmentation", lambda a, r: pigment(a, (1.1, 1.15, 1.2)))]


def measure(a: np.ndarray) -> tuple[float, float] | None:
    try:
        out = segment_optic_disc_cup(Image(a.astype(np.float32)))
        return float(vertical_cup_to_disc_ratio(out.disc, out.cup)), float(rim_to_disc_ratio(out.disc, out.cup))
    except DxGraphError:
        return None


def _bal(y, p):
    y, p = np.asarray(y), np.asarray(p)
    sens = (p[y == 1] == 1).mean() if (y == 1).any() else np.nan
    spec = (p[y == 0] == 0).mean() if (y == 0).any() else np.nan
    return (sens + spec) / 2


def glaucoma_table(root: Path, rows: list[dict], levels, title: str) -> list[str]:
    out = [f"| {title} | vCDR MAE | rim/disc MAE | balanced accuracy (vCDR >= 0.6) | failed |", "|---|---|---|---|---|"]
    for name, fn in levels:
        ev, er, y, p, failed = [], [], [], [], 0
        for i, row in enumerate(rows):
            a = np.asarray(PILImage.open(root / row["image"]).convert("RGB"))
            m = measure(fn(a, np.random.default_rng(i)))
            if m is None:
                failed += 1
                continue
            ev.append(abs(m[0] - float(row["vcdr"])))
            er.append(abs(m[1] - float(row["rdr"])))
            y.append(int(row["label"]))
            p.append(int(m[0] >= 0.6))
        out.append(f"| {name} | {np.mean(ev):.3f} | {np.mean(er):.3f} | {_bal(y, p):.3f} | {failed} |")
    return out


def real_photo_table() -> list[str]:
    from skimage import data

    a = data.retina()
    out = ["| perturbation (real CC0 photograph) | vCDR | rim/disc |", "|---|---|---|"]
    vs = []
    for name, fn in LEVELS:
        m = measure(fn(a, np.random.default_rng(0)))
        out.append(f"| {name} | {'failed' if m is None else f'{m[0]:.3f}'} | {'-' if m is None else f'{m[1]:.3f}'} |")
        if m is not None:
            vs.append(m[0])
    out.append(f"| **spread** | {min(vs):.3f}-{max(vs):.3f} | |")
    return out


def mimic(a: np.ndarray, rng: np.random.Generator, n_bright: int = 12, n_dark: int = 6) -> np.ndarray:
    """Drusen/exudate-like bright yellow spots and dark pigment clumps, away from nothing in particular."""
    out = a.astype(np.float32)
    h, w = a.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    for k in range(n_bright + n_dark):
        cy, cx, r = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0.2 * w, 0.8 * w), rng.uniform(2, 5) * h / 512
        spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
        colour = np.array([255, 230, 120], np.float32) if k < n_bright else np.array([60, 35, 25], np.float32)
        out = out * (1 - 0.7 * spot) + 0.7 * spot * colour
    return _u8(out)


def dr_table(root: Path, rows: list[dict], root_b: Path, rows_b: list[dict]) -> list[str]:
    out = ["| DR negatives (true count 0) | false microaneurysm calls (count >= 1) | mean false count |", "|---|---|---|"]
    negs = [r for r in rows if int(r["label"]) == 0]
    negs_b = [r for r in rows_b if int(r["label"]) == 0]
    for name, with_mimics, where, which in (
            ("family a as generated", False, root, negs),
            ("family a with drusen/exudate spots and pigment clumps painted on", True, root, negs),
            ("family b (drusen, reflections beside vessels, pigment clumps)", False, root_b, negs_b)):
        calls, counts = 0, []
        for i, row in enumerate(which):
            a = np.asarray(PILImage.open(where / row["image"]).convert("RGB"))
            if with_mimics:
                a = mimic(a, np.random.default_rng(1000 + i))
            c = int(lesion_count(segment_microaneurysms(Image(a.astype(np.float32)))))
            calls += c >= 1
            counts.append(c)
        out.append(f"| {name} | {calls} of {len(which)} | {np.mean(counts):.2f} |")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=20000)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: perturb,real,family,dr")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines = [f"Synthetic phantoms, n={args.n}, seed {args.seed} (held out); measurement agreement only.", ""]
        if not skip >= {"perturb", "family"}:
            generate("glaucoma", args.n, args.seed, root / "g")
            rows = list(csv.DictReader((root / "g" / "labels.csv").open()))
            if "perturb" not in skip:
                lines += glaucoma_table(root / "g", rows, LEVELS, "perturbation (glaucoma phantoms)") + [""]
            if "family" not in skip:
                lines += glaucoma_table(root / "g", rows, LEVELS[:1] + FAMILY, "derived from family a (glaucoma)") + [""]
        if "family" not in skip:
            generate("glaucoma", args.n, args.seed, root / "gb", family="b")
            rows_b = list(csv.DictReader((root / "gb" / "labels.csv").open()))
            picked = [lv for lv in LEVELS if lv[0] in ("none", "blur sigma 2", "JPEG q60", "resize 0.5x",
                                                       "illumination gradient 60%")]
            lines += glaucoma_table(root / "gb", rows_b, picked, "family b (glaucoma phantoms)") + [""]
        if "real" not in skip:
            lines += real_photo_table() + [""]
        if "dr" not in skip:
            generate("diabetic_retinopathy", args.n, args.seed, root / "dr")
            generate("diabetic_retinopathy", args.n, args.seed, root / "drb", family="b")
            lines += dr_table(root / "dr", list(csv.DictReader((root / "dr" / "labels.csv").open())),
                              root / "drb", list(csv.DictReader((root / "drb" / "labels.csv").open()))) + [""]
    print("\n".join(lines))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
