"""``dxgraph serve tools``: expose the tool registry over HTTP (for GPU tool hosts)."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer

from dxgraph.errors import InputError

__all__ = ["app", "check_port_free"]

app = typer.Typer(help="Serve dxgraph components over HTTP.", no_args_is_help=True)


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` for a moment, so a busy port is one line before any server starts.

    uvicorn and Gradio report a busy port with log lines, a traceback or an odd exit code
    after seconds of start-up; a user needs to hear which port and what to pass instead.
    ``SO_REUSEADDR`` matches what the servers set, so a port left in TIME_WAIT by the last
    run is not called busy.

    Raises:
        InputError: the port is in use, needs privileges, or ``host`` is not an address here.
    """
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on host {host!r}: {exc.strerror}; pass an address of this "
                         "machine with --host (127.0.0.1 keeps it to this machine)") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"port {port} on {host} is in use; pick another with --port") from None
            if exc.errno == errno.EACCES:
                raise InputError(f"port {port} on {host} needs administrator rights; "
                                 "pick one above 1023 with --port") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InputError(f"{host} is not an address of this machine; pass one with --host "
                                 "(127.0.0.1 keeps it to this machine)") from None
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


@app.command()
def tools(
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 only behind a firewall.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8100,
) -> None:
    """Serve every registered tool: GET /v1/tools, POST /v1/tools/NAME/call."""
    check_port_free(host, port)
    import uvicorn

    from dxgraph.config import load_settings
    from dxgraph.tools.registry import ToolContext
    from dxgraph.tools.server import create_app
    from dxgraph.models.roles import for_role

    settings = load_settings()
    ctx = ToolContext(settings=settings, models={"vlm": for_role(settings, "vlm")})
    uvicorn.run(create_app(ctx), host=host, port=port, log_level="info")
