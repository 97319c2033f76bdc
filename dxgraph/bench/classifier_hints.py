"""Classifier hints computed from a model: ``--hints classifier:PATH``.

3MDBench's best condition gives the doctor a CNN's top-3 labels for the case photo. Here the
classifier is a local Hugging Face image-classification folder (``models.classifier``); it
scores each evaluated case's own pictures (``Case.images``; several pictures: their scores
are averaged), its class names are mapped through the label table, and the top 3 mapped
labels become the case's hints: the same ``case_id -> [label, ...]`` a CSV gives, so the
strategy downstream cannot tell the two apart.

* the classifier gets pixels and nothing else: never the case id, its text or its label;
* a class name that names no dxgraph label is dropped from the ranking; a classifier none of
  whose names map is refused, naming a few of them;
* an evaluated ``dialogue+hints`` case without a picture is refused (a silent skip would
  play ``dialogue+hints`` on fewer cases than the other strategies and break the pairing);
  ``bench hints`` instead leaves it out of its CSV and says how many it left out;
* a run records the folder's content hash in its identity (other weights behind the same
  path are refused on resume, as a changed CSV is) and in its manifest, with the sha256 of
  the hints it computed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dxgraph.bench.grid import CLASSIFIER_SPEC
from dxgraph.errors import InputError
from dxgraph.simulator import labels as label_table
from dxgraph.types import Case

__all__ = ["SPEC_PREFIX", "is_classifier_spec", "classifier_path", "label_map", "classifier_hints",
           "hints_sha256", "hints_record"]

SPEC_PREFIX = CLASSIFIER_SPEC
_HINTS_USED = 3  # protocol.HINTS_USED; not imported, protocol imports this module


def is_classifier_spec(spec: str | None) -> bool:
    return bool(spec) and spec.startswith(SPEC_PREFIX)


def classifier_path(spec: str) -> str:
    path = spec.removeprefix(SPEC_PREFIX)
    if not path:
        raise InputError("--hints classifier: names no folder; write --hints classifier:PATH")
    return path


def label_map(class_names: list[str], path: str) -> list[str | None]:
    """Each class index's dxgraph label (None where the class names none)."""
    mapped = [label_table.normalize_label(name) for name in class_names]
    if not any(mapped):
        few = ", ".join(repr(n) for n in class_names[:4]) + (", ..." if len(class_names) > 4 else "")
        raise InputError(f"classifier folder {path!r}: none of the classifier's {len(class_names)} labels ({few}) "
                         "is a dxgraph label or synonym; rename its config.json id2label to label table names")
    return mapped


def _picture(case: Case, j: int) -> Any:
    from dxgraph.tools.imaging import display_array, load

    try:
        return display_array(load(case.images[j].path))
    except InputError as exc:
        raise InputError(f"case {case.id!r}: field 'images[{j}].path': {exc}") from None


def _rank(scores: list[float], mapped: list[str | None]) -> list[str]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    labels = [mapped[i] for i in order if mapped[i] is not None]
    return list(dict.fromkeys(labels))[:_HINTS_USED]


def classifier_hints(path: str, cases: list[Case], *, skip_without_image: bool = False,
                     batch_size: int = 16) -> tuple[dict[str, list[str]], list[str]]:
    """``(case_id -> top-3 labels, ids of cases left out for want of a picture)``.

    Raises:
        InputError: a bad model folder, no class name that maps, a picture that does not
            open, or a case without a picture when ``skip_without_image`` is False.
    """
    from dxgraph.models.classifier import ImageClassifier

    classifier = ImageClassifier(path, batch_size=batch_size)
    mapped = label_map(classifier.labels, path)
    bare = [c.id for c in cases if not c.images]
    if bare and not skip_without_image:
        raise InputError(f"case {bare[0]!r} has no image ({len(bare)} evaluated case(s) without one), so the "
                         f"classifier {path!r} has nothing to look at; leave them out with --cases-file, or give "
                         "their hints in a CSV (dxgraph bench hints writes one to edit)")
    scored = [c for c in cases if c.images]
    # Pictures are decoded one batch at a time: a photo set never sits in memory whole.
    refs = [(k, j) for k, case in enumerate(scored) for j in range(len(case.images))]
    sums: list[list[float]] = [[0.0] * len(mapped) for _ in scored]
    for start in range(0, len(refs), classifier.batch_size):
        batch = refs[start:start + classifier.batch_size]
        rows = classifier.scores([_picture(scored[k], j) for k, j in batch])
        for (k, _), row in zip(batch, rows):
            sums[k] = [a + b for a, b in zip(sums[k], row)]
    # Averaging over a case's pictures divides every class by the same count: rank the sums.
    hints = {case.id: _rank(sums[k], mapped) for k, case in enumerate(scored)}
    return hints, bare


def hints_sha256(hints: dict[str, list[str]]) -> str:
    """sha256 of the hints themselves (id order), whatever produced them."""
    text = json.dumps({k: hints[k] for k in sorted(hints)}, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hints_record(spec: str, hints: dict[str, list[str]]) -> dict[str, Any]:
    """What a run's manifest says about classifier hints it computed."""
    from dxgraph.models.classifier import classifier_sha256

    path = classifier_path(spec)
    return {"classifier": path, "model_sha256": classifier_sha256(path), "sha256": hints_sha256(hints),
            "n_cases": len(hints)}


def check_same_hints(run_id: str, stored: dict[str, Any], manifest: dict[str, Any]) -> None:
    """A resumed run must play the hints it started with: same weights (the grid identity
    checks those) can still give other hints when the cases' pictures changed."""
    old = (stored.get("manifest") or {}).get("hints") or {}
    new = manifest.get("hints") or {}
    if "model_sha256" in old and old.get("sha256") != new.get("sha256"):
        raise InputError(f"run {run_id!r} started with other classifier hints (sha256 {str(old.get('sha256'))[:12]}, "
                         f"now {str(new.get('sha256'))[:12]}): the cases' pictures changed; resume with the same "
                         "cases or use a new --run-id")
