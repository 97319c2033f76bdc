"""`dxgraph ui --db URL`: the page reads the store a run was written to, and names it."""

from __future__ import annotations


def test_ui_reads_the_store_given_with_db(tmp_path, monkeypatch):
    """`dxgraph ui --db URL` opens that store (the page lists its runs), checked before serving."""
    from typer.testing import CliRunner

    from dxgraph.cli import app

    seen = {}
    monkeypatch.setattr("dxgraph.cli.serve.check_port_free", lambda host, port: None)
    monkeypatch.setattr("dxgraph.ui.app.launch", lambda **kw: seen.update(kw))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    result = CliRunner().invoke(app, ["ui", "--db", url, "--port", "7999"])
    assert result.exit_code == 0, result.output
    assert seen["services"].db_url == url and seen["services"].store.url == url
    assert "runs.db" in seen["services"].store_label


def test_store_label_hides_a_password():
    from dxgraph.ui.services import Services

    services = Services(db_url="postgresql+psycopg://dx:secret@127.0.0.1:5432/dx")
    assert "secret" not in services.store_label and "127.0.0.1:5432/dx" in services.store_label


async def test_demo_and_cli_show_one_run_with_the_same_intervals(tmp_path, monkeypatch):
    """One bootstrap setting: the Benchmarks tab's CIs are the ones `bench report` prints."""
    import json

    from typer.testing import CliRunner

    from dxgraph.bench.dialogue import run_consultation
    from dxgraph.bench.record import SampleResult
    from dxgraph.cli import app
    from dxgraph.store import SampleRow
    from dxgraph.ui.benchmarks_tab import run_view
    from dxgraph.ui.services import Services

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    services = Services(db_url=url)
    try:
        store = services.store
        store.create_run("shared", kind="dialogue", config={"grid": {"strategies": ["dialogue"]}}, samples_total=3)
        for i, case in enumerate(list(services.cases.values())[:3]):
            res = await run_consultation(case, services.personas["neutral"], services.doctor("dialogue"),
                                         services.patient(), services.judge(), max_turns=3)
            store.save_sample(SampleRow(run_id="shared", key=f"k{i}", case_id=case.id, temperament="neutral",
                                        strategy="dialogue", doctor="rules",
                                        result_json=SampleResult.from_consultation(case, res).model_dump_json()),
                              res.turns)
        summary, overall, *_ = run_view(services, "shared")
    finally:
        services.close()
    cli = CliRunner().invoke(app, ["bench", "report", "shared", "--json", "--db", url])
    assert cli.exit_code == 0, cli.output
    report = json.loads(cli.output)
    reps = report["bootstrap"]["reps"]
    assert reps == services.settings.bootstrap_reps == 1000 and f"({reps} replicates)" in summary
    ci = report["metrics"]["overall"]["top1_accuracy"]
    shown = overall["top-1"].iloc[0]
    assert shown == f"{ci['value']:.3f} [{ci['ci_low']:.3f}, {ci['ci_high']:.3f}]", (shown, ci)


async def test_benchmarks_tab_says_what_every_report_says(tmp_path):
    """The tab shows the CLI's metrics in the CLI's words (failures counted as wrong, other and
    unparseable apart), the protocol, 3MDBench's metric under its protocol, and the warning of a
    run evaluated on the doctor's own knowledge base; before, it showed six metrics and neither."""
    from dxgraph.bench.dialogue import run_consultation
    from dxgraph.bench.record import SampleResult
    from dxgraph.bench.report import METRIC_LABELS, shown_metrics
    from dxgraph.store import SampleRow
    from dxgraph.ui.benchmarks_tab import run_view
    from dxgraph.ui.services import Services

    services = Services(db_url=f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        store = services.store
        case = next(iter(services.cases.values()))
        res = await run_consultation(case, services.personas["neutral"], services.doctor("dialogue"),
                                     services.patient(), services.judge(), max_turns=3)
        for run_id, extra in (("plain", {}), ("mdb", {"config": {"protocol": "3mdbench"}}),
                              ("overlap", {"train_overlap": [case.id]})):
            store.create_run(run_id, kind="dialogue", config={"grid": {"strategies": ["dialogue"]}, **extra},
                             samples_total=2)
            store.save_sample(SampleRow(run_id=run_id, key="k0", case_id=case.id, temperament="neutral",
                                        strategy="dialogue", doctor="rules",
                                        result_json=SampleResult.from_consultation(case, res).model_dump_json()),
                              res.turns)
            store.save_sample(SampleRow(run_id=run_id, key="k1", case_id=case.id, temperament="choleric",
                                        strategy="dialogue", doctor="rules", status="error",
                                        error="ModelUnavailable: HTTP 503"), [])
        views = {run_id: run_view(services, run_id) for run_id in ("plain", "mdb", "overlap")}
    finally:
        services.close()
    summary, overall, *_ = views["plain"]
    assert list(overall.columns)[1:-1] == [METRIC_LABELS[m] for m in shown_metrics({})]
    assert {"top-1 all assigned", "other", "unparseable", "abstained"} <= set(overall.columns)
    assert "protocol: dxgraph" in summary and "counts the 1 failed ones as wrong" in summary
    assert "TRAINING CASES" not in summary
    summary, overall, *_ = views["mdb"]
    assert "protocol: 3mdbench" in summary and {"F1 3MDBench", "failure rate"} <= set(overall.columns)
    summary, *_ = views["overlap"]
    assert "EVALUATED ON TRAINING CASES" in summary
