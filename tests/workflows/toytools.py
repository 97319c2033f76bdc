"""Small real tools used to drive the real diagnostic graph in tests (no mocks)."""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np

from dxgraph.errors import ToolError
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.registry import FilePath, tool

CALLS: dict[str, int] = {}
_lock = threading.Lock()


def _count(name: str) -> None:
    with _lock:
        CALLS[name] = CALLS.get(name, 0) + 1


@tool(version="1")
def toy_load(path: FilePath) -> Image:
    """Read a toy image: a text file holding one number per line.

    Args:
        path: the file.
    """
    _count("toy_load")
    values = [float(x) for x in open(path).read().split()]
    return Image(array=np.array(values, dtype=np.float32), source=str(path))


class Halves(NamedTuple):
    low: Mask
    high: Mask


@tool(version="1")
def toy_split(image: Image, cut: float = 0.5) -> Halves:
    """Split pixels at a cut.

    Args:
        image: the toy image.
        cut: pixels above it go to ``high``.
    """
    _count("toy_split")
    return Halves(Mask(image.array <= cut), Mask(image.array > cut))


@tool(version="1", outputs=("fraction",), units={"fraction": "ratio"})
def toy_fraction(low: Mask, high: Mask) -> float:
    """Share of high pixels.

    Args:
        low: low mask.
        high: high mask.
    """
    _count("toy_fraction")
    return float(high.array.sum() / (low.array.sum() + high.array.sum()))


@tool(version="1", outputs=("value",))
def toy_fail(image: Image, message: str = "segmenter found nothing") -> float:
    """Always fails, recoverably.

    Args:
        image: ignored.
        message: the error text.
    """
    raise ToolError(message)


@tool(version="1", outputs=("answer",))
def toy_answer(image: Image, say: str = "yes") -> str:
    """Answer a fixed word.

    Args:
        image: ignored.
        say: the answer.
    """
    return say


# The toy workflow's head and its one measurement, shared by the graph, evaluate and calibrate tests.
TOY_HEAD = """\
id: toy
name: Toy
modality: toy
question: Is it high?
outcomes: {positive: high, negative: low}
inputs: [{name: image}]
indicators:
"""
FRAC_STEPS = """\
    steps:
      - {tool: toy_load, inputs: {path: image}, outputs: img}
      - {tool: toy_split, inputs: {image: img}, outputs: [low, high]}
      - {tool: toy_fraction, inputs: {low: low, high: high}, outputs: frac}
"""
