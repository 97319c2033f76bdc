"""IDRiD disease grading (Porwal et al., Data 2018) layout.

As distributed (IEEE DataPort, "B. Disease Grading")::

    PATH/1. Original Images/a. Training Set/IDRiD_001.jpg ...
    PATH/1. Original Images/b. Testing Set/IDRiD_001.jpg ...
    PATH/2. Groundtruths/a. IDRiD_Disease Grading_Training Labels.csv
    PATH/2. Groundtruths/b. IDRiD_Disease Grading_Testing Labels.csv

CSV columns ``Image name``, ``Retinopathy grade`` (0-4, international scale), ``Risk of
macular edema`` (the header has a trailing space in the release). Label: grade >= 1 (any
DR, what the workflow asks); the grade is kept as ``dr_grade``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from dxgraph.bench.datasets import DatasetFormat
from dxgraph.errors import InputError

_SETS = {"a": "a. Training Set", "b": "b. Testing Set"}


def load(root: Path) -> list[dict[str, Any]]:
    rows = []
    for labels in sorted((root / "2. Groundtruths").glob("*.csv")):
        images = root / "1. Original Images" / _SETS.get(labels.name[:1], "")
        with labels.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = {c.strip(): c for c in reader.fieldnames or [] if c}
            if "Image name" not in cols or "Retinopathy grade" not in cols:
                raise InputError(f"{labels}: columns 'Image name' and 'Retinopathy grade' expected (IDRiD layout)")
            for lineno, row in enumerate(reader, start=2):
                name = (row[cols["Image name"]] or "").strip()
                if not name:
                    continue
                try:
                    grade = int(row[cols["Retinopathy grade"]])
                except ValueError:
                    raise InputError(f"{labels}:{lineno}: 'Retinopathy grade' must be 0-4") from None
                split = "train" if labels.name.startswith("a") else "test"
                rows.append({"id": f"{split}/{name}", "images": {"image": str(images / f"{name}.jpg")},
                             "label": int(grade >= 1), "truth": {"dr_grade": float(grade)}})
    return rows


FORMAT = DatasetFormat(
    name="idrid", title="IDRiD fundus photographs with DR grades", workflow="diabetic_retinopathy",
    truth="label = retinopathy grade >= 1 (grade kept as dr_grade)",
    layout="'1. Original Images/a. Training Set/*.jpg' + '2. Groundtruths/a. IDRiD_Disease Grading_Training Labels.csv' "
           "(and b. Testing Set)",
    source="Porwal P et al. Indian Diabetic Retinopathy Image Dataset (IDRiD). Data 2018;3(3):25", load=load)
