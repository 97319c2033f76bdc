"""Evaluate a workflow on a labelled image set (``labels.csv``), e.g. generated phantoms.

``labels.csv`` columns: ``id``; ``image`` (or ``image_<input>`` per workflow input) with
paths relative to the CSV; ``label`` (1 positive, 0 negative); any further column is a true
measurement compared with the indicator output of the same name (``vcdr``, ``ctr``, ``ef``...).
Labels and truths are read only here, after the workflow has run: nothing of them reaches
a tool.

An indeterminate outcome (too little evidence) is neither a positive nor a negative call.
As for a test with non-diagnostic results, the binary metrics are computed over the
determinate samples only and reported with their coverage (determinate / all), and the
indeterminate samples are named: scoring them as negatives would hide them in the
specificity.
"""

from __future__ import annotations

import asyncio
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             recall_score, roc_auc_score)

from dxgraph.errors import InputError
from dxgraph.types import Diagnosis
from dxgraph.workflows.rules import compile_rule
from dxgraph.workflows.schema import Workflow

__all__ = ["read_labels", "evaluate_workflow", "binary_metrics"]


def read_labels(data_dir: str | Path, wf: Workflow) -> list[dict[str, Any]]:
    """Rows of ``labels.csv`` with image paths bound to the workflow's inputs."""
    path = Path(data_dir) / "labels.csv"
    if not path.is_file():
        raise InputError(f"{str(data_dir)!r} has no labels.csv; make one with 'dxgraph phantoms generate'")
    names = [s.name for s in wf.inputs]
    rows = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if not cols:
            raise InputError(f"{path} is empty: it needs a header row (id, image, label, truth columns) "
                             "and one row per case; 'dxgraph phantoms generate' writes an example")
        image_cols = {n: ("image" if len(names) == 1 and "image" in cols else f"image_{n}") for n in names}
        missing = [c for c in image_cols.values() if c not in cols]
        if len(names) == 1 and missing:
            raise InputError(f"{path}: column 'image' missing: workflow {wf.id!r} takes one image per row, "
                             f"its path in a column named 'image'")
        if missing:
            wanted = ", ".join(repr(c) for c in image_cols.values())
            raise InputError(f"{path}: column {missing[0]!r} missing: workflow {wf.id!r} takes {len(names)} images per "
                             f"row ({', '.join(names)}), their paths in columns {wanted}")
        if "label" not in cols:
            raise InputError(f"{path}: column 'label' (1 positive, 0 negative) missing")
        truth_cols = [c for c in cols if c not in ("id", "label", *image_cols.values()) and not c.startswith("image")]
        for lineno, row in enumerate(reader, start=2):
            try:
                label = int(row["label"])
                truths = {c: float(row[c]) for c in truth_cols if row.get(c) not in (None, "")}
            except ValueError:
                raise InputError(f"{path}:{lineno}: label must be 0/1 and truths numbers") from None
            rows.append({
                "id": row.get("id") or str(lineno - 1),
                "images": {n: str(Path(data_dir) / row[c]) for n, c in image_cols.items()},
                "label": label,
                "truth": truths,
            })
    return rows


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC (ties count half, as in Mann-Whitney U); undefined with only one class."""
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def binary_metrics(pred: list[int], labels: list[int], scores: list[float] | None = None) -> dict[str, float | None]:
    """Accuracy, balanced accuracy, sensitivity, specificity, F1 and (with scores) AUC."""
    p, y = np.asarray(pred, dtype=int), np.asarray(labels, dtype=int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, p, labels=[0, 1]).ravel()) if len(y) else (0, 0, 0, 0)
    # sklearn returns 0 with a warning where a ratio is undefined; we report None instead, so
    # the undefined cases are decided here and the defined ones computed by sklearn.
    sens = float(recall_score(y, p, pos_label=1, zero_division=0)) if tp + fn else None
    spec = float(recall_score(y, p, pos_label=0, zero_division=0)) if tn + fp else None
    # F1 is 0 when there are positives but none was found, and undefined with no positives at all.
    f1 = float(f1_score(y, p, zero_division=0)) if tp + fp + fn else None
    bal = float(balanced_accuracy_score(y, p)) if sens is not None and spec is not None else None
    out = {"n": len(y), "accuracy": float(accuracy_score(y, p)) if len(y) else None, "balanced_accuracy": bal,
           "sensitivity": sens, "specificity": spec, "f1": f1, "tp": tp, "tn": tn, "fp": fp, "fn": fn}
    out["auc"] = _auc(np.asarray(scores, dtype=float), y) if scores is not None else None
    return out


def _primary(wf: Workflow) -> tuple[str, float] | None:
    """The highest-weight quantitative indicator and the sign that makes larger = positive."""
    quant = [i for i in wf.indicators if i.kind == "quantitative"]
    if not quant:
        return None
    ind = max(quant, key=lambda i: i.weight)
    sign = -1.0 if "<" in ind.rule and ">" not in ind.rule else 1.0
    compile_rule(ind.rule)
    return ind.id, sign


async def evaluate_workflow(wf: Workflow, data_dir: str | Path, *, runner=None, concurrency: int = 2,
                            limit: int | None = None, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run ``wf`` on every row of ``data_dir/labels.csv`` (the first ``limit`` rows) and score it.

    ``rows`` (from ``dxgraph.bench.datasets``) replaces ``labels.csv`` for a public data set's
    layout; ``data_dir`` then only names the data in the report."""
    from dxgraph.agents.diagnose import run_workflow

    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit!r}")
    rows = (read_labels(data_dir, wf) if rows is None else rows)[:limit]
    if not rows:
        raise InputError(f"no rows to evaluate in {Path(data_dir) / 'labels.csv'}: it has a header but no cases")
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(row: dict[str, Any]) -> Diagnosis:
        async with sem:
            return await run_workflow(wf, row["images"], runner=runner)

    results = await asyncio.gather(*(one(r) for r in rows))
    positive = wf.outcomes.positive
    preds, labels, scores, primary_scores = [], [], [], []
    errors: dict[str, list[float]] = {}
    indeterminate_ids: list[str] = []
    primary = _primary(wf)
    per_sample = []
    for row, dx in zip(rows, results):
        values: dict[str, Any] = {}
        for ind in dx.indicators:
            values.update(ind.values)
            if ind.value is not None:
                values.setdefault(ind.id, ind.value)
        pred: int | None = 1 if dx.outcome == positive else 0
        if dx.outcome == wf.outcomes.indeterminate:
            pred = None
            indeterminate_ids.append(row["id"])
        else:
            preds.append(pred)
            labels.append(row["label"])
            scores.append(dx.score if dx.score is not None else 0.0)
            if primary:
                v = next((i.value for i in dx.indicators if i.id == primary[0]), None)
                primary_scores.append(primary[1] * float(v) if isinstance(v, (int, float)) else -math.inf)
        for name, truth in row["truth"].items():
            v = values.get(name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                errors.setdefault(name, []).append(abs(float(v) - truth))
        per_sample.append({"id": row["id"], "label": row["label"], "pred": pred, "outcome": dx.outcome,
                           "values": {k: values[k] for k in row["truth"] if k in values}, "truth": row["truth"]})
    metrics = binary_metrics(preds, labels, scores)
    if primary and primary_scores:
        clean = np.nan_to_num(np.asarray(primary_scores, dtype=float), neginf=-1e9, posinf=1e9)
        metrics[f"auc_{primary[0]}"] = _auc(clean, np.asarray(labels))
    mae = {name: {"mae": float(np.mean(errs)), "n": len(errs), "missing": len(rows) - len(errs)}
           for name, errs in sorted(errors.items())}
    return {"workflow": wf.id, "version": wf.version, "data": str(data_dir), "n": len(rows),
            "n_determinate": len(preds), "coverage": len(preds) / len(rows) if rows else None,
            "indeterminate": len(indeterminate_ids), "indeterminate_ids": indeterminate_ids,
            "metrics_on": "determinate samples; indeterminate ones are excluded (see coverage)",
            "metrics": metrics, "mae": mae, "samples": per_sample}
