"""`dxgraph bench report`'s table on a terminal."""

from __future__ import annotations

from rich.markup import escape

from dxgraph.cli.bench import _echo_errors, _say

__all__ = ["print_report"]


def print_report(rep: dict) -> None:
    from rich.table import Table

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
    metrics = ["top1_accuracy", "top1_accuracy_all_assigned", "top3_accuracy", "macro_f1", "other_rate",
               "unparseable_rate", "abstention_rate", "mean_turns", "facts_elicited"]
    if rep.get("protocol") == "3mdbench":  # 3MDBench's own metric beside the strict ones
        metrics[4:4] = ["f1_3mdbench", "failure_rate"]
    for title, groups in (("overall", {"all": rep["metrics"].get("overall", {})}),
                          ("temperament", rep["metrics"].get("by_temperament", {})),
                          ("strategy", rep["metrics"].get("by_strategy", {}))):
        table = Table(title=title)
        table.add_column(title, overflow="fold")
        for m in metrics:
            table.add_column(m, overflow="fold")
        for name, block in groups.items():
            cells = []
            for m in metrics:
                v = block.get(m) or {}
                cells.append("–" if v.get("value") is None else f"{v['value']:.3f} [{v['ci_low']:.2f}, {v['ci_high']:.2f}]")
            table.add_row(escape(str(name)), *cells)
        console.print(table)
