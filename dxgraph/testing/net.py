"""Small network helpers shared by the servers, their tests and the benchmarks."""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (for servers started by tests)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
