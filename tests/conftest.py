"""Test-wide guards: no network beyond loopback, an isolated DXGRAPH_HOME per test."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
for _var in list(os.environ):
    # A developer's own model settings must not leak into the suite.
    if _var.startswith("DXGRAPH_") and _var.endswith("_MODEL"):
        del os.environ[_var]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetworkBlocked(RuntimeError):
    pass


def _guarded_connect(self, address):
    if not _is_loopback(address):
        raise NetworkBlocked(f"test tried to reach {address!r}; only 127.0.0.1 is allowed (mark it 'network' to opt in)")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_loopback(address):
        raise NetworkBlocked(f"test tried to reach {address!r}; only 127.0.0.1 is allowed")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host not in (None, "localhost") and not _is_loopback((host, 0)):
        raise NetworkBlocked(f"test tried to resolve {host!r}; only loopback is allowed")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(request, monkeypatch):
    if request.node.get_closest_marker("network"):
        yield
        return
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("dxhome")
    monkeypatch.setenv("DXGRAPH_HOME", str(home))
    monkeypatch.delenv("DXGRAPH_DATABASE_URL", raising=False)
    monkeypatch.delenv("DXGRAPH_CONFIG", raising=False)
    monkeypatch.chdir(home)
    yield home


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A fresh, empty store URL: a SQLite file, and PostgreSQL when CI provides one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = os.environ.get("DXGRAPH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL not provided: run scripts/start_postgres.sh and set DXGRAPH_TEST_POSTGRES_URL")
    from sqlmodel import SQLModel

    from dxgraph.store.db import get_engine

    engine = get_engine(url)
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    return url
