"""``dxgraph serve tools``: expose the tool registry over HTTP (for GPU tool hosts)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Serve dxgraph components over HTTP.", no_args_is_help=True)


@app.command()
def tools(
    host: Annotated[str, typer.Option(help="address to bind; 0.0.0.0 only behind a firewall")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8100,
) -> None:
    """Serve every registered tool: GET /v1/tools, POST /v1/tools/NAME/call."""
    import uvicorn

    from dxgraph.config import load_settings
    from dxgraph.tools.registry import ToolContext
    from dxgraph.tools.server import create_app
    from dxgraph.workflows.run import _role_model

    settings = load_settings()
    ctx = ToolContext(settings=settings, models={"vlm": _role_model(settings, "vlm")})
    uvicorn.run(create_app(ctx), host=host, port=port, log_level="info")
