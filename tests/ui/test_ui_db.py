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
