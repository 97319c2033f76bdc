"""``dxgraph ui``: serve the Gradio telemedicine demo."""

from __future__ import annotations

import importlib.util

import typer

__all__ = ["ui"]

def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (use --auth beyond loopback)."),
    port: int = typer.Option(7860, "--port", min=1, max=65535, help="TCP port."),
    auth: str = typer.Option(None, "--auth", help="USER:PASS required to open the page (or DXGRAPH_UI_AUTH).",
                             show_default=False),
    db: str = typer.Option(None, "--db", help="SQLAlchemy URL of the store whose benchmark runs the page shows "
                           "(default: settings), e.g. the one given to `bench run --db`.", show_default=False),
) -> None:
    """Serve the telemedicine demo: Consult, Workflow, Simulate and Benchmarks (research use only).

    No public share link is ever made: cases and uploaded images may be patient data.
    """
    if importlib.util.find_spec("gradio") is None:
        from dxgraph.errors import ConfigError

        raise ConfigError("the UI needs gradio: pip install 'dxgraph[ui]'")
    from dxgraph.cli.serve import check_port_free

    check_port_free(host, port)  # before the slow Gradio import and model warm-up
    from dxgraph.ui.app import launch, parse_auth

    pair = parse_auth(auth) if auth else None  # a bad --auth fails before anything starts
    services = None
    if db is not None:
        from dxgraph.store import Store
        from dxgraph.ui.services import Services

        services = Services(store=Store(db))  # a bad URL fails here, before the server starts
    typer.echo(f"dxgraph UI on http://{host}:{port} (research demo, not for clinical use; Ctrl+C stops it)")
    launch(host=host, port=port, auth=pair, services=services)
