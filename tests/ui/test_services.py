"""Upload checks, the roles panel and auth parsing: what a visitor reads when they get it wrong."""

from __future__ import annotations

import gzip

import pytest

from dxgraph.config import Settings, load_settings
from dxgraph.errors import ConfigError, InputError
from dxgraph.ui.app import parse_auth
from dxgraph.ui.services import IMAGE_SUFFIXES, role_rows, roles_markdown, validate_upload

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_accepts_a_real_png(tmp_path):
    p = tmp_path / "eye.png"
    p.write_bytes(PNG)
    assert validate_upload(p) == p


def test_refuses_a_file_type_it_cannot_read(tmp_path):
    p = tmp_path / "notes.pdf"
    p.write_bytes(b"%PDF-1.4")
    with pytest.raises(InputError, match=r"'notes.pdf' is not an accepted file type; upload one of: png, jpg"):
        validate_upload(p)


def test_refuses_yaml_where_only_images_are_wanted(tmp_path):
    p = tmp_path / "wf.yaml"
    p.write_text("id: x\n")
    validate_upload(p)  # fine as a general upload
    with pytest.raises(InputError, match="not an accepted file type"):
        validate_upload(p, allowed=IMAGE_SUFFIXES)


def test_refuses_a_file_over_the_limit_with_its_size(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(PNG + b"\x00" * 2_100_000)
    with pytest.raises(InputError, match=r"'big.png' is 2.1 MB; files up to 2 MB are accepted"):
        validate_upload(p, max_mb=2)


def test_refuses_a_renamed_file(tmp_path):
    p = tmp_path / "photo.jpg"
    p.write_bytes(PNG)  # a PNG called .jpg
    with pytest.raises(InputError, match="does not look like a JPG file"):
        validate_upload(p)


def test_refuses_an_empty_file_and_a_missing_one(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="'empty.png' is empty"):
        validate_upload(p)
    with pytest.raises(InputError, match="did not arrive"):
        validate_upload(tmp_path / "gone.png")
    with pytest.raises(InputError, match="no file"):
        validate_upload(None)


def test_knows_gzipped_nifti_and_dicom(tmp_path):
    nii = tmp_path / "brain.nii.gz"
    nii.write_bytes(gzip.compress(b"\x5c\x01\x00\x00" + b"\x00" * 400))
    assert validate_upload(nii) == nii
    dcm = tmp_path / "ct.dcm"
    dcm.write_bytes(b"\x00" * 128 + b"DICM" + b"\x00" * 64)
    assert validate_upload(dcm) == dcm
    fake = tmp_path / "ct2.dcm"
    fake.write_bytes(b"hello world" * 20)
    with pytest.raises(InputError, match="does not look like a DCM file"):
        validate_upload(fake)


def test_roles_panel_says_the_offline_rule_agents_are_in_use():
    text = roles_markdown(load_settings())
    assert text.startswith("All roles run offline")
    rows = {r[0]: r[1] for r in role_rows(load_settings())}
    assert rows["doctor"] == rows["patient"] == rows["judge"] == "offline rule agent"
    assert rows["vlm"] == "unavailable (set DXGRAPH_VLM_MODEL)"


def test_roles_panel_names_a_configured_model(monkeypatch):
    monkeypatch.setenv("DXGRAPH_DOCTOR_MODEL", "openai:qwen2.5-7b@http://127.0.0.1:8000/v1")
    text = roles_markdown(load_settings())
    assert "| doctor | `openai:qwen2.5-7b@http://127.0.0.1:8000/v1` |" in text
    assert "| patient | `offline rule agent` |" in text
    assert not text.startswith("All roles run offline")


def test_roles_panel_from_explicit_settings():
    s = Settings.model_validate({"models": {"vlm": "scripted"}})
    assert dict((r[0], r[1]) for r in role_rows(s))["vlm"] == "scripted"


@pytest.mark.parametrize("bad", ["alice", ":secret", "alice:", ":"])
def test_auth_must_be_user_colon_pass(bad):
    with pytest.raises(ConfigError, match="USER:PASS"):
        parse_auth(bad)


def test_auth_keeps_colons_in_the_password():
    assert parse_auth("alice:s3:cr3t") == ("alice", "s3:cr3t")
    assert parse_auth(None) is None and parse_auth("") is None
