"""Hostile requests to the tool server: each is answered 200 or a 4xx with a JSON error,
never a 500, and the connection keeps serving the next request."""

import base64
import copy
import io
import json
import random

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

import tests.workflows.toytools  # noqa: F401  (registers the toy tools)
from dxgraph.tools.codec import encode_value
from dxgraph.tools.data import Image
from dxgraph.tools.server import create_app

SEED = 16
TOKEN = "fuzz-token-" + "x" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _png_b64() -> str:
    buf = io.BytesIO()
    PILImage.new("L", (16, 16), 90).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


VALID = {
    "load_image": {"inputs": {"path": {"type": "file", "name": "a.png", "data": _png_b64()}}, "args": {"expect": "2d"}},
    "toy_split": {"inputs": {"image": encode_value(Image(np.arange(6, dtype=np.float32) / 6))}, "args": {"cut": 0.5}},
}
_JUNK = [None, True, 0, -1, 1e308, "", "x" * 1000, "../../../../etc/passwd", "/etc/shadow", "~", [], {}, [[[]]],
         {"type": "scalar"}, {"type": "file"}, {"type": "image", "array": "AAAA"}, {"type": "array", "array": 5},
         {"type": "nope"}, {"type": "scalar", "value": "/etc/hostname"}, "\x00", "%%%", {"type": "image", "spacing": "ab"}]


def _mutate(body: dict, rng: random.Random) -> dict:
    body = copy.deepcopy(body)
    kind = rng.randrange(6)
    section = rng.choice(["inputs", "args"])
    if kind == 0:
        body[section] = rng.choice(_JUNK)
    elif kind == 1 and body.get(section):
        key = rng.choice(sorted(body[section]))
        body[section][key] = rng.choice(_JUNK)
    elif kind == 2 and body.get("inputs"):
        value = next(iter(body["inputs"].values()))
        if isinstance(value, dict) and value:
            field = rng.choice(sorted(value))
            value[field] = rng.choice(_JUNK)
    elif kind == 3:
        body.setdefault(section, {})[rng.choice(["zz", "path", "expect", "cut", "__class__"])] = rng.choice(_JUNK)
    elif kind == 4:
        body.pop(rng.choice(["inputs", "args"]), None)
    else:
        body = rng.choice(_JUNK)
    return body


def _requests() -> list[tuple[str, str, bytes, dict]]:
    rng = random.Random(SEED)
    out = []
    for k in range(60):
        tool = rng.choice(sorted(VALID))
        out.append((f"mut{k}-{tool}", tool, json.dumps(_mutate(VALID[tool], rng)).encode(), AUTH))
    raw = [b"", b"{", b"[1]", b"null", b"\xff\xfe", b"[" * 50_000 + b"]" * 50_000, b'{"inputs": ' * 5000,
           b'{"inputs": {}, "args": {}}', json.dumps({"inputs": {"path": {"type": "file", "data": "A" * 7}}}).encode()]
    out += [(f"raw{k}", "load_image", body, AUTH) for k, body in enumerate(raw)]
    out += [("no-token", "load_image", json.dumps(VALID["load_image"]).encode(), {}),
            ("bad-token", "load_image", json.dumps(VALID["load_image"]).encode(), {"Authorization": "Bearer " + "y" * 31}),
            ("basic-auth", "load_image", json.dumps(VALID["load_image"]).encode(), {"Authorization": "Basic eDp5"}),
            ("unknown-tool", "../../etc", b"{}", AUTH)]
    return out


REQUESTS = _requests()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return TestClient(create_app(token=TOKEN, data_root=root, max_body_bytes=4 << 20), raise_server_exceptions=False)


def test_the_valid_requests_work(client):
    for tool, body in VALID.items():
        assert client.post(f"/v1/tools/{tool}/call", json=body, headers=AUTH).status_code == 200


@pytest.mark.parametrize("name, tool, body, headers", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_a_hostile_request_is_a_4xx_json_error_and_the_server_goes_on(client, name, tool, body, headers):
    r = client.post(f"/v1/tools/{tool}/call", content=body, headers={**headers, "content-type": "application/json"})
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code != 200:
        assert isinstance(r.json()["error"], str) and "Traceback" not in r.text
    assert client.get("/v1/health").status_code == 200
