"""`dxgraph bench report`'s table on a terminal."""

from __future__ import annotations

from rich.markup import escape

from dxgraph.bench.report import METRIC_LABELS as LABELS, shown_metrics
from dxgraph.cli.bench import _echo_errors, _say

__all__ = ["LABELS", "metric_tables", "print_report"]


def _cell(v: dict | None, sep: str) -> str:
    v = v or {}
    return "–" if v.get("value") is None else f"{v['value']:.3f}{sep}[{v['ci_low']:.2f}, {v['ci_high']:.2f}]"


def _width(columns: list[list[str]]) -> int:
    """Width a table of these columns (heading first, then cells) needs with nothing folded."""
    return sum(max(len(line) for text in col for line in text.split("\n")) + 3 for col in columns) + 1


def metric_tables(title: str, groups: dict, metrics: list[str], console) -> list:
    """Tables of ``groups`` (name -> metric -> {value, ci_low, ci_high}) that fit ``console``'s width.

    Wide first (a row per group, a column per metric, each cell "value [CI]" on one line, so
    piped output stays one line per group). Where that is wider than the terminal, turned on
    its side (a row per metric, value over CI) and split into as many tables as the groups
    need. Numbers and names are never cut; headings wrap only between words.
    """
    from rich.table import Table

    width = console.size.width
    wide = Table(title=title)
    wide.add_column(title, no_wrap=True)
    for m in metrics:
        wide.add_column(LABELS.get(m, m), overflow="fold")
    for name, block in groups.items():
        wide.add_row(escape(str(name)), *(_cell(block.get(m), " ") for m in metrics))
    names = list(groups)
    need = _width([[title, *map(str, names)]] + [[LABELS.get(m, m), *(_cell(groups[n].get(m), " ") for n in names)]
                                                  for m in metrics])
    if need <= width or not groups:
        return [wide]
    tables: list = []
    # one line per metric if every group fits side by side, else value over CI, split into chunks
    for sep, per in [(" ", len(names))] + [("\n", k) for k in range(len(names), 0, -1)]:
        tables = []
        for i in range(0, len(names), per):
            chunk = names[i:i + per]
            tall = Table(title=title if i == 0 else f"{title} (cont.)")
            tall.add_column("metric", overflow="fold")
            for name in chunk:
                tall.add_column(escape(str(name)), no_wrap=True)
            for m in metrics:
                tall.add_row(LABELS.get(m, m), *(_cell(groups[n].get(m), sep) for n in chunk))
            tables.append(tall)
            need = max(need if i else 0, _width([["metric", *(LABELS.get(m, m) for m in metrics)]]
                                                + [[str(n), *(_cell(groups[n].get(m), sep) for m in metrics)]
                                                   for n in chunk]))
        if need <= width:
            break
    return tables


def print_report(rep: dict) -> None:
    from dxgraph.cli import console

    synthetic = {True: "synthetic cases", False: "imported cases", "mixed": "mixed cases"}.get(rep["synthetic"], "")
    console.print(f"run {rep['run_id']!r} ({rep['status']}): {rep['samples_done']}/{rep['samples_total']} done, "
                  f"{rep['samples_failed']} failed{(' — ' + synthetic) if synthetic else ''}", highlight=False)
    from dxgraph.bench.report import protocol_line

    _say(protocol_line(rep))
    from dxgraph.bench.report import manifest_lines, overlap_note

    for line in manifest_lines(rep.get("manifest") or {}):
        _say("  " + line)
    if overlap_note(rep):
        _say(overlap_note(rep))
    if rep["samples_failed"]:
        _say("failed samples by error kind:")
        _echo_errors(rep.get("error_kinds") or [], rep["run_id"])
    if not rep["samples_done"]:
        # Metrics of zero samples are all blank; a table of dashes would read as a result.
        why = (f"all samples failed ({rep['samples_failed']} of {rep['samples_total']})"
               if rep["samples_failed"] == rep["samples_total"] else "no sample has finished yet")
        _say(f"no metrics: {why}" + (f"; fix the cause, then: dxgraph bench retry {rep['run_id']}"
                                     if rep["samples_failed"] else ""))
        return
    if rep.get("unjudged"):
        _say(f"{rep['unjudged']} stored dialogues are not judged yet (their judge failed; counted as failed "
             f"below): dxgraph bench judge {rep['run_id']}")
    if rep["samples_failed"]:
        _say(f"metrics below cover the {rep['samples_done']} completed samples only; "
             f"re-run the failed ones with: dxgraph bench retry {rep['run_id']}")
        _say(f"except top1_accuracy_all_assigned, which counts the {rep['samples_failed']} failed samples as wrong")
    metrics = shown_metrics(rep)
    for title, groups in (("overall", {"all": rep["metrics"].get("overall", {})}),
                          ("temperament", rep["metrics"].get("by_temperament", {})),
                          ("strategy", rep["metrics"].get("by_strategy", {}))):
        for table in metric_tables(title, groups, metrics, console):
            console.print(table)
