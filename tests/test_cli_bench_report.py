"""`bench report`'s tables on terminals of each width: nothing cut, nothing wider than the terminal."""

import io
import re

import pytest
from rich.console import Console

from dxgraph.cli.bench_report import LABELS, metric_tables

METRICS = ["top1_accuracy", "top1_accuracy_all_assigned", "top3_accuracy", "macro_f1", "f1_3mdbench",
           "failure_rate", "other_rate", "unparseable_rate", "abstention_rate", "mean_turns", "facts_elicited"]
GROUPS = {name: {m: {"value": 0.5 + i / 100, "ci_low": 0.25 + i / 100, "ci_high": 0.75 + i / 100}
                 for m in METRICS}
          for i, name in enumerate(["sanguine", "choleric", "melancholic", "phlegmatic", "neutral"])}
GROUPS["neutral"]["macro_f1"] = {"value": None}


def render(width: int) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    for table in metric_tables("temperament", GROUPS, METRICS, console):
        console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 120, 400])
def test_tables_fit_the_terminal_and_cut_no_number_name_or_heading(width):
    text = render(width)
    assert max(len(line) for line in text.splitlines()) <= width
    for name in GROUPS:
        assert re.search(rf"\b{name}\b", text), name  # whole, never "melanchol ic"
    for block in GROUPS.values():
        for v in block.values():
            if v["value"] is not None:
                assert f"{v['value']:.3f}" in text and f"[{v['ci_low']:.2f}, {v['ci_high']:.2f}]" in text
    assert "–" in text  # a metric with no value reads as a dash, not 0
    if width >= 80:
        for m in METRICS:
            assert LABELS[m] in text, LABELS[m]  # headings are words, not "top1_ac|curacy"


def test_a_wide_terminal_or_a_pipe_gets_one_line_per_group():
    lines = render(400).splitlines()
    for name in GROUPS:
        assert sum(bool(re.search(rf"\b{name}\b", line)) for line in lines) == 1
