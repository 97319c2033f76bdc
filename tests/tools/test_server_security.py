"""The tool server as an attacker meets it: token, data root, malformed requests, body limit."""

import base64
import io
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

import tests.workflows.toytools  # noqa: F401  (registers the toy tools)
from dxgraph.tools.remote import RemoteTools
from dxgraph.tools.server import create_app
from tests.subprocess_cli import one_error, run_cli

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _png(path, size=(32, 32)):
    PILImage.fromarray(np.full(size, 128, np.uint8)).save(path)
    return path


def _path_input(value):
    return {"inputs": {"path": {"type": "scalar", "value": value}}}


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    _png(r / "ok.png")
    return r


@pytest.fixture
def client(root):
    return TestClient(create_app(token=TOKEN, data_root=root, max_body_bytes=1 << 20), raise_server_exceptions=False)


def test_every_endpoint_but_health_needs_the_token(client):
    assert client.get("/v1/health").status_code == 200
    assert client.get("/v1/tools").status_code == 401
    assert client.get("/v1/tools", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.post("/v1/tools/load_image/call", json=_path_input("ok.png"))
    assert r.status_code == 401 and r.json()["type"] == "Unauthorized"
    assert client.get("/v1/tools", headers=AUTH).status_code == 200


def test_paths_outside_the_root_and_missing_files_get_one_answer(client, root, tmp_path):
    secret = _png(tmp_path / "private.png")
    (root / "link.png").symlink_to(secret)
    answers = set()
    for value in ["../private.png", str(secret), "link.png", "/etc/passwd", "/etc/shadow", "~/x.png",
                  "missing.png", "/no/such/file.png", "", "a\x00b"]:
        r = client.post("/v1/tools/load_image/call", json=_path_input(value), headers=AUTH)
        assert r.status_code == 400, (value, r.text)
        answers.add(r.json()["error"].split("' ", 1)[-1])
    assert len(answers) == 1 and "not an allowed file" in answers.pop()
    ok = client.post("/v1/tools/load_image/call", json=_path_input("ok.png"), headers=AUTH)
    assert ok.status_code == 200 and list(ok.json()["outputs"].values())[0]["type"] == "image"


def test_without_a_data_root_only_uploads_are_read(root):
    client = TestClient(create_app(token=None), raise_server_exceptions=False)
    r = client.post("/v1/tools/load_image/call", json=_path_input(str(root / "ok.png")))
    assert r.status_code == 400 and "not an allowed file" in r.json()["error"]
    data = base64.b64encode((root / "ok.png").read_bytes()).decode()
    up = client.post("/v1/tools/load_image/call",
                     json={"inputs": {"path": {"type": "file", "name": "../../x.png", "data": data}}})
    assert up.status_code == 200


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[1, 2]", b"null", b"[" * 100_000, b'{"inputs": []}', b'{"inputs": {}}', b'{"x": 1}',
    b'{"inputs": {"path": {"type": "file", "data": "%%%"}}}',
    b'{"inputs": {"path": {"type": "file"}}}',
    b'{"inputs": {"path": 3}}',
    b'{"inputs": {"path": {"type": "image", "array": "AAAA"}}}',
    b'{"inputs": {"path": {"type": "scalar", "value": "ok.png"}}, "args": {"expect": 7}}',
    b'{"inputs": {"path": {"type": "scalar", "value": "ok.png"}}, "args": {"nope": 1}}',
])
def test_malformed_requests_are_a_4xx_with_a_json_error(client, body):
    r = client.post("/v1/tools/load_image/call", content=body, headers={**AUTH, "content-type": "application/json"})
    assert 400 <= r.status_code < 500 and isinstance(r.json()["error"], str), r.text


@pytest.mark.parametrize("payload", [
    {"type": "image", "array": "AAAA", "spacing": "ab"},
    {"type": "mask", "array": None},
    {"type": "array", "array": "!!"},
    {"type": "scalar", "value": [1, 2]},
])
def test_wrong_value_types_for_array_inputs_are_400(client, payload):
    r = client.post("/v1/tools/toy_split/call", json={"inputs": {"image": payload}, "args": {"cut": 0.5}}, headers=AUTH)
    assert r.status_code == 400, r.text


def test_an_npy_header_cannot_declare_more_than_it_carries(client):
    buf = io.BytesIO()
    np.save(buf, np.zeros(4, np.float32))
    forged = buf.getvalue().replace(b"(4,)", b"(100000000000,)".ljust(4))
    payload = {"type": "image", "array": base64.b64encode(forged).decode()}
    r = client.post("/v1/tools/toy_split/call", json={"inputs": {"image": payload}, "args": {"cut": 0.5}}, headers=AUTH)
    assert r.status_code == 400 and "npy" in r.json()["error"]


def test_a_body_over_the_limit_is_413_even_without_content_length(client):
    big = b'{"inputs": {"path": {"type": "file", "data": "' + b"A" * (2 << 20) + b'"}}}'
    r = client.post("/v1/tools/load_image/call", content=big, headers=AUTH)
    assert r.status_code == 413

    def chunks():
        for _ in range(40):
            yield b" " * 65536
    r = client.post("/v1/tools/load_image/call", content=chunks(), headers=AUTH)
    assert r.status_code == 413


def test_the_client_sends_the_token_from_settings_or_env(monkeypatch):
    class S:
        tools = {"remote": {"url": "http://h:1", "token": "from-settings"}}
    assert RemoteTools.from_settings(S()).token == "from-settings"
    monkeypatch.setenv("DXGRAPH_TOOLS_TOKEN", "from-env")
    S.tools = {"remote": {"url": "http://h:1"}}
    assert RemoteTools.from_settings(S()).token == "from-env"


def test_cli_refuses_no_auth_off_loopback_and_a_short_token():
    line = one_error(run_cli("serve", "tools", "--host", "0.0.0.0", "--no-auth"))
    assert "loopback" in line
    env = {"DXGRAPH_TOOLS_TOKEN": "short"}
    assert "16 characters" in one_error(run_cli("serve", "tools", "--host", "0.0.0.0", env=env))
    assert "not a folder" in one_error(run_cli("serve", "tools", "--data-root", os.devnull))
