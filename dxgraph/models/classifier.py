"""A local Hugging Face image classifier: scores for pictures, from a folder, on the CPU.

3MDBench's best doctor condition puts an image classifier's top-3 labels in the doctor's
context. ``ImageClassifier`` loads such a classifier from a folder that ``save_pretrained``
wrote (``config.json`` with ``id2label``, the weights, ``preprocessor_config.json``) with
``local_files_only=True`` and ``trust_remote_code=False``: nothing is downloaded and no code
from the folder runs. It sees pixels only; which case a picture belongs to, and that case's
label, are the caller's business (``bench.classifier_hints``), never this module's.

No classifier ships with dxgraph: the folder is the user's (3MDBench's CNN weights are theirs
to get, and a ``transformers`` export of them is what this loads).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from dxgraph.errors import InputError

__all__ = ["ImageClassifier", "classifier_sha256", "read_classifier_labels"]

_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
_CONFIGS = ("config.json", "preprocessor_config.json")


def _folder(path: str | Path) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"classifier folder {str(path)!r} {what}; give a local image-classification model folder as "
                         "save_pretrained writes it (config.json, weights, preprocessor_config.json)")
    for name in _CONFIGS:
        if not (folder / name).is_file():
            raise InputError(f"classifier folder {str(path)!r} has no {name}; save the model and its image "
                             "processor there with save_pretrained")
    if not any((folder / name).is_file() for name in _WEIGHTS):
        raise InputError(f"classifier folder {str(path)!r} has no weights ({' or '.join(_WEIGHTS[:2])}); save "
                         "the model there with save_pretrained")
    return folder


def _weight_files(folder: Path) -> list[Path]:
    """The files whose bytes fix the classifier's output: configs, weights and weight shards."""
    files = [folder / n for n in _CONFIGS]
    files += sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith((".safetensors", ".bin")))
    files += [folder / n for n in _WEIGHTS[2:] if (folder / n).is_file()]
    return files


@functools.lru_cache(maxsize=8)
def _hash_files(stamps: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in stamps:
        path = Path(name)
        h.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def classifier_sha256(path: str | Path) -> str:
    """sha256 over the folder's configs and weight files (names and contents), so a run
    keyed on it notices retrained or swapped weights behind the same path."""
    folder = _folder(path)
    try:
        stamps = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _weight_files(folder))
        return _hash_files(stamps)
    except OSError as exc:
        raise InputError(f"classifier folder {str(path)!r} cannot be read: {exc.strerror or exc}") from None


def read_classifier_labels(path: str | Path) -> list[str]:
    """The classifier's class names in class-index order, from ``config.json`` (no torch)."""
    folder = _folder(path)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        id2label = config["id2label"]
        labels = [str(id2label[str(i)]) for i in range(len(id2label))]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"classifier folder {str(path)!r}: config.json has no usable id2label "
                         f"({type(exc).__name__}: {exc}); an image-classification model's config maps class "
                         "indices 0..N-1 to names") from None
    if not labels:
        raise InputError(f"classifier folder {str(path)!r}: config.json's id2label is empty")
    return labels


class ImageClassifier:
    """An image-classification model from a local folder, run on the CPU in batches.

    Args:
        path: the model folder (see the module docstring).
        batch_size: pictures per forward pass; bounds the memory a large case set takes.
    """

    def __init__(self, path: str | Path, batch_size: int = 16):
        self.path = str(path)
        self.labels = read_classifier_labels(path)
        self.batch_size = max(1, int(batch_size))
        self._model: Any = None
        self._processor: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        # A local folder never needs the hub; the env var also stops lookups transformers makes
        # on its own.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoImageProcessor, AutoModelForImageClassification
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        folder = str(_folder(self.path))
        try:
            model = AutoModelForImageClassification.from_pretrained(folder, local_files_only=True,
                                                                    trust_remote_code=False)
            processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"classifier folder {self.path!r} does not load as an image classifier: {first}") from None
        if model.config.num_labels != len(self.labels):
            raise InputError(f"classifier folder {self.path!r}: the model has {model.config.num_labels} outputs "
                             f"but id2label names {len(self.labels)}")
        self._model, self._processor = model.to("cpu").eval(), processor

    def scores(self, images: Sequence[Any]) -> list[list[float]]:
        """One row of class scores per picture (PIL images or uint8 arrays), in ``labels`` order.

        Scores are softmax probabilities, or sigmoids for a multi-label model.
        """
        import torch

        self._load()
        multi = getattr(self._model.config, "problem_type", None) == "multi_label_classification"
        rows: list[list[float]] = []
        for start in range(0, len(images), self.batch_size):
            batch = [_rgb(im) for im in images[start:start + self.batch_size]]
            inputs = self._processor(images=batch, return_tensors="pt")
            with torch.inference_mode():
                logits = self._model(**inputs).logits.float()
            probs = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
            rows.extend(probs.tolist())
        return rows


def _rgb(image: Any) -> Any:
    """A PIL RGB picture: what every image processor accepts, whatever the file held."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    return image.convert("RGB")
