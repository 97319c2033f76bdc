"""`dxgraph bench hints`: the CSV of top-3 labels a local image classifier gives each case,
to read, edit and pass to `bench run --hints FILE.csv`."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Optional

import typer

from dxgraph.cli.bench import _say, app
from dxgraph.errors import InputError

__all__: list[str] = []


@app.command("hints")
def hints_cmd(
    classifier: Annotated[str, typer.Option(help="A local image-classification model folder (save_pretrained's).")],
    out: Annotated[str, typer.Option(help="Write the CSV here (case_id,top1,top2,top3).")],
    cases: Annotated[str, typer.Option(help="'bundled' or a folder of case files.")] = "bundled",
    split: Annotated[str, typer.Option(help="train, test or all; match `bench run` (test under --protocol dxgraph, "
                                            "all under 3mdbench).")] = "all",
    cases_file: Annotated[Optional[str], typer.Option("--cases-file",
                                                      help="Only the case ids listed in this file.")] = None,
    batch_size: Annotated[int, typer.Option(help="Pictures per forward pass.", min=1, max=1024)] = 16,
) -> None:
    """Score each case's pictures with a classifier and write its top-3 dxgraph labels per case.

    Cases without a picture are left out of the CSV (the count is said); `bench run --hints
    classifier:PATH` refuses them instead. Class names that name no dxgraph label are dropped.
    """
    from dxgraph.bench.classifier_hints import classifier_hints
    from dxgraph.bench.grid import read_case_ids, select_cases
    from dxgraph.bench.report import check_writable
    from dxgraph.simulator.cases import load_cases

    if split not in ("train", "test", "all"):
        raise InputError(f"--split {split!r} is not train, test or all")
    check_writable(out, "--out")
    chosen = list(load_cases(source=cases, split=None if split == "all" else split))
    if cases_file:
        chosen = select_cases(chosen, None, case_ids=read_case_ids(cases_file))
    if not chosen:
        raise InputError(f"no cases in {cases!r} (split {split!r}); check --cases and --split")
    hints, bare = classifier_hints(classifier, chosen, skip_without_image=True, batch_size=batch_size)
    if not hints:
        raise InputError(f"none of the {len(chosen)} case(s) of {cases!r} (split {split!r}) has a picture for the "
                         "classifier to look at; give --cases a set with images (dxgraph cases import-3mdbench)")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["case_id", "top1", "top2", "top3"])
    for case_id in sorted(hints):
        writer.writerow([case_id, *hints[case_id]])
    Path(out).write_text(buf.getvalue(), encoding="utf-8")
    _say(f"wrote {out}: top-3 labels of {len(hints)} case(s)"
         + (f"; {len(bare)} case(s) without a picture left out (first: {bare[0]!r})" if bare else ""))
