"""``dxgraph serve tools``: expose the tool registry over HTTP (for GPU tool hosts)."""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
import socket
from pathlib import Path
from typing import Annotated

import typer

from dxgraph.errors import InputError

__all__ = ["app", "check_port_free", "is_loopback", "tools_token"]

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


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tools_token(host: str, no_auth: bool) -> str | None:
    """The tool server's bearer token: ``DXGRAPH_TOOLS_TOKEN``, else a fresh random one; None
    only for ``--no-auth`` on a loopback address (anything else is refused with InputError)."""
    if no_auth:
        if not is_loopback(host):
            raise InputError(f"--no-auth is allowed only on a loopback address, not {host!r}: a tool server "
                             "on the network reads images for anyone who reaches it; set DXGRAPH_TOOLS_TOKEN")
        return None
    token = os.environ.get("DXGRAPH_TOOLS_TOKEN", "").strip()
    if token and len(token) < 16:
        raise InputError("DXGRAPH_TOOLS_TOKEN is shorter than 16 characters; use e.g. "
                         "'python -c \"import secrets; print(secrets.token_urlsafe(32))\"'")
    return token or secrets.token_urlsafe(32)


@app.command()
def tools(
    host: Annotated[str, typer.Option(help="Address to bind; a non-loopback one needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8100,
    data_root: Annotated[Path | None, typer.Option(
        help="Folder whose files requests may name by path; without it, images must be uploaded.")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without a token (loopback only).")] = False,
    max_body_mb: Annotated[int, typer.Option(min=1, max=1024, help="Largest request body, in MB.")] = 32,
) -> None:
    """Serve every registered tool: GET /v1/tools, POST /v1/tools/NAME/call.

    Requests carry ``Authorization: Bearer TOKEN``: the token is DXGRAPH_TOOLS_TOKEN, or one
    generated and printed at start; clients set ``tools.remote.token`` or the same variable.
    """
    token = tools_token(host, no_auth)
    if data_root is not None and not data_root.is_dir():
        raise InputError(f"--data-root {str(data_root)!r} is not a folder")
    check_port_free(host, port)
    import uvicorn

    from dxgraph.config import load_settings
    from dxgraph.tools.registry import ToolContext
    from dxgraph.tools.server import create_app
    from dxgraph.models.roles import for_role

    settings = load_settings()
    ctx = ToolContext(settings=settings, models={"vlm": for_role(settings, "vlm")})
    if token is None:
        typer.echo(f"tool server on {host}:{port} without authentication (loopback only)", err=True)
    elif not os.environ.get("DXGRAPH_TOOLS_TOKEN"):
        typer.echo(f"tool server token (set DXGRAPH_TOOLS_TOKEN on clients): {token}", err=True)
    typer.echo(f"file inputs: {'uploads and files under ' + str(data_root.resolve()) if data_root else 'uploads only'}",
               err=True)
    uvicorn.run(create_app(ctx, token=token, data_root=data_root, max_body_bytes=max_body_mb * 1024 * 1024),
                host=host, port=port, log_level="info")
