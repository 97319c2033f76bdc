"""ACDC cardiac cine MRI (Bernard et al., IEEE TMI 2018) training layout.

As distributed (Creatis, University of Lyon)::

    PATH/training/patient001/Info.cfg            "ED: 1", "ES: 12", "Group: DCM", ...
    PATH/training/patient001/patient001_frame01.nii.gz      (ED volume)
    PATH/training/patient001/patient001_frame01_gt.nii.gz   (0 bg, 1 RV, 2 myocardium, 3 LV cavity)
    PATH/training/patient001/patient001_frame12.nii.gz      (ES) and ..._frame12_gt.nii.gz

True volumes: LV cavity voxels (label 3) times the voxel volume from the NIfTI header;
EF = (EDV - ESV) / EDV, as in the ACDC paper's clinical indices. Label: EF <= 40 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dxgraph.bench.datasets import DatasetFormat
from dxgraph.errors import InputError

LV = 3


def _info(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def lv_volume_ml(gt: Path) -> float:
    import nibabel as nib

    try:
        img = nib.load(str(gt))
        data = np.asarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear line
        raise InputError(f"{gt}: not a readable NIfTI mask ({exc})") from None
    voxel = float(np.prod(img.header.get_zooms()[:3]))
    return float((np.rint(data) == LV).sum()) * voxel / 1000.0


def load(root: Path) -> list[dict[str, Any]]:
    rows = []
    for cfg in sorted(root.glob("**/patient*/Info.cfg")):
        info, folder = _info(cfg), cfg.parent
        try:
            ed, es = int(info["ED"]), int(info["ES"])
        except (KeyError, ValueError):
            raise InputError(f"{cfg}: 'ED: N' and 'ES: N' lines expected (ACDC layout)") from None
        frame = {k: folder / f"{folder.name}_frame{n:02d}" for k, n in (("ed", ed), ("es", es))}
        imgs = {k: Path(f"{p}.nii.gz") for k, p in frame.items()}
        gts = {k: Path(f"{p}_gt.nii.gz") for k, p in frame.items()}
        if not all(p.is_file() for p in (*imgs.values(), *gts.values())):
            continue
        edv, esv = lv_volume_ml(gts["ed"]), lv_volume_ml(gts["es"])
        if edv <= 0:
            continue
        ef = 100.0 * (edv - esv) / edv
        rows.append({"id": folder.name, "images": {k: str(v) for k, v in imgs.items()}, "label": int(ef <= 40),
                     "truth": {"edv_ml": round(edv, 3), "esv_ml": round(esv, 3), "ef": round(ef, 3)},
                     "group": info.get("Group")})
    return rows


FORMAT = DatasetFormat(
    name="acdc", title="ACDC cine MRI with ED/ES LV masks", workflow="hfref",
    truth="edv_ml, esv_ml, ef from the LV cavity masks (label 3); label = ef <= 40",
    layout="**/patientNNN/Info.cfg + patientNNN_frameXX.nii.gz + patientNNN_frameXX_gt.nii.gz",
    source="Bernard O et al. IEEE TMI 2018;37(11):2514-2525", load=load)
