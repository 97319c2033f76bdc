"""The Gradio telemedicine demo: Consult, Workflow, Simulate and Benchmarks tabs.

The page holds no diagnostic logic: every tab calls the Python APIs (the doctor agents,
``run_workflow``, ``run_consultation``, the store and the bench report). Each browser
session keeps its own state; nothing about a conversation lives at module
level, so two visitors never see each other's consultation or images. A consultation is
kept on the server under a token the browser holds (``gr.BrowserState``), so it survives a
page reload within that browser session.

>>> demo = build_app()          # doctest: +SKIP
>>> launch(host="127.0.0.1", port=7860, auth=("ada", "secret"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os

import gradio as gr

from dxgraph.errors import ConfigError
from dxgraph.ui import render
from dxgraph.ui.benchmarks_tab import build_benchmarks_tab
from dxgraph.ui.consult import build_consult_tab
from dxgraph.ui.services import MAX_UPLOAD_MB, Services, roles_markdown
from dxgraph.ui.simulate import build_simulate_tab
from dxgraph.ui.theme import CSS, theme
from dxgraph.ui.workflow_tab import build_workflow_tab

__all__ = ["build_app", "launch", "parse_auth", "launch_kwargs"]

log = logging.getLogger("dxgraph.ui")


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``USER:PASS`` (from ``--auth`` or ``DXGRAPH_UI_AUTH``) as a pair; None when unset.

    Raises:
        ConfigError: the value is not ``USER:PASS`` with both parts non-empty.
    """
    if value is None or value == "":
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError("UI auth must look like 'USER:PASS' (both non-empty); check --auth or DXGRAPH_UI_AUTH")
    return user, password


def build_app(services: Services | None = None) -> gr.Blocks:
    """The Blocks app. ``services`` carries settings, the store and any injected models."""
    services = services or Services()
    with gr.Blocks(title="dxgraph telemedicine demo", analytics_enabled=False) as demo:
        with gr.Row(elem_id="dx-header"):
            gr.Markdown("# dxgraph telemedicine demo\nMulti-agent diagnostic workflows and doctor–patient "
                        "dialogue, with every number on show.")
        gr.HTML(render.notice_html())
        with gr.Accordion("Which model serves each role", open=False, elem_id="dx-roles"):
            gr.Markdown(roles_markdown(services.settings))
        with gr.Tabs(elem_id="dx-tabs"):
            with gr.Tab("Consult", id="consult", elem_id="tab-consult"):
                consult_load, consult_in, consult_out = build_consult_tab(services)
            with gr.Tab("Workflow", id="workflow", elem_id="tab-workflow"):
                build_workflow_tab(services)
            with gr.Tab("Simulate", id="simulate", elem_id="tab-simulate"):
                build_simulate_tab(services)
            with gr.Tab("Benchmarks", id="benchmarks", elem_id="tab-benchmarks"):
                refresh, refresh_outputs = build_benchmarks_tab(services)
        demo.load(refresh, None, refresh_outputs)
        # A reload finds this browser session's consultation again (only a token is in the browser).
        demo.load(consult_load, consult_in, consult_out)
    demo.services = services  # type: ignore[attr-defined]  # for tests and shutdown
    return demo


def launch_kwargs(auth: tuple[str, str] | None, services: Services) -> dict:
    """The ``Blocks.launch`` options shared by the CLI and the tests."""
    services.overlay_root.mkdir(parents=True, exist_ok=True)
    return dict(
        auth=auth,
        # Overlays are written under DXGRAPH_HOME; only that folder is served, nothing above it.
        allowed_paths=[str(services.overlay_root)],
        auth_message="dxgraph research demo: sign in" if auth else None,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        theme=theme(),
        css=CSS,
        show_error=False,
        ssr_mode=False,
        footer_links=[],
    )


def launch(host: str = "127.0.0.1", port: int = 7860, auth: str | tuple[str, str] | None = None, *,
           services: Services | None = None, block: bool = True) -> gr.Blocks:
    """Build and serve the app.

    Args:
        host: interface to bind; anything but loopback should come with ``auth``.
        port: TCP port.
        auth: ``USER:PASS`` or a pair; default from ``DXGRAPH_UI_AUTH``.
        services: injected services (tests); default from the settings.
        block: wait until the server stops (False returns right after start).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    pair = auth if isinstance(auth, tuple) else parse_auth(auth if auth is not None else os.environ.get("DXGRAPH_UI_AUTH"))
    if pair is None and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("the UI listens on %s without --auth: anyone who can reach it can use it", host)
    demo = build_app(services)
    demo.services.warm_up()  # type: ignore[attr-defined]
    demo.queue(default_concurrency_limit=4)
    # Never a public share link: cases and images may be patient data, and Gradio would
    # otherwise open one on GRADIO_SHARE=true or in a hosted notebook. quiet drops its
    # "set share=True" hint; the CLI prints the address itself.
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True, share=False,
                **launch_kwargs(pair, demo.services))  # type: ignore[attr-defined]
    return demo
