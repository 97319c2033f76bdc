"""The CLI as a user runs it: a real subprocess, real exit codes, no tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

DXGRAPH = [sys.executable, "-c", "from dxgraph.cli import main; main()"]


def run(*args, cwd=None):
    return subprocess.run([*DXGRAPH, *args], capture_output=True, text=True, timeout=180, cwd=cwd)


def test_version_and_help():
    assert run("version").stdout.strip() == "0.1.0"
    out = run("--help").stdout
    for command in ("diagnose", "evaluate", "workflows", "cases", "bench", "models", "phantoms", "serve"):
        assert command in out


def test_diagnose_json_has_the_evidence_fields():
    r = run("diagnose", "--workflow", "glaucoma", "--image", "sample:retina", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["workflow"] == "glaucoma" and out["outcome"]
    ind = {i["id"]: i for i in out["indicators"]}
    assert set(ind) == {"vcdr", "rim_to_disc", "disc_haemorrhage", "peripapillary_atrophy"}
    for i in out["indicators"]:
        assert {"id", "value", "unit", "status", "passed"} <= set(i)
    assert 0.2 <= ind["vcdr"]["value"] <= 0.8 and ind["vcdr"]["unit"] == "ratio"
    assert ind["disc_haemorrhage"]["status"] == "unavailable" and "VLM" in ind["disc_haemorrhage"]["error"]


def test_overlay_is_written(tmp_path):
    out = tmp_path / "o.png"
    r = run("diagnose", "-w", "glaucoma", "-i", "sample:retina", "--overlay", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "content,fragment",
    [
        (b"", "is empty"),
        (b"hello, not an image\n", "holds text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "truncated"),
    ],
)
def test_bad_images_are_one_line_errors_with_exit_2(tmp_path, content, fragment):
    p = tmp_path / "scan.png"
    p.write_bytes(content)
    r = run("diagnose", "-w", "cardiomegaly", "-i", str(p))
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2 and fragment in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_2d_image_where_3d_is_needed(tmp_path):
    r = run("diagnose", "-w", "hfref", "-i", "sample:retina", "-i", "sample:retina")
    assert r.returncode == 2 and "3D volume" in r.stderr and "Traceback" not in r.stderr


def test_wrong_number_of_images():
    r = run("diagnose", "-w", "hfref", "-i", "sample:retina")
    assert r.returncode == 2 and "needs 2 image(s) (ed, es)" in r.stderr


def test_validate_reports_file_line_and_exit_2(tmp_path):
    good = Path(__file__).resolve().parents[1] / "dxgraph" / "workflows" / "builtin" / "cardiomegaly.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("rule: ctr > 0.5", "rule: ctr >> 0.5\n    colour: red"))
    r = run("workflows", "validate", str(good), str(bad))
    assert r.returncode == 2
    assert f"{bad}:" in r.stderr and "unknown key 'colour'" in r.stderr
    assert run("workflows", "validate", str(good)).returncode == 0


def test_schema_is_json_schema():
    s = json.loads(run("workflows", "schema").stdout)
    assert s["title"] == "dxgraph workflow" and "indicators" in s["properties"]


def test_dicom_volume_without_spacing_is_refused(tmp_path):
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = np.stack([ds.pixel_array] * 4).tobytes()
    ds.NumberOfFrames = 4
    for key in ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices"):
        if key in ds:
            del ds[key]
    path = tmp_path / "ed.dcm"
    ds.save_as(path)
    r = run("diagnose", "-w", "hfref", "-i", str(path), "-i", str(path))
    assert r.returncode == 2 and "no pixel/voxel spacing" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("args, fragment", [
    (["workflows", "validate"], "Missing argument 'TARGETS'; see 'dxgraph workflows validate --help'"),
    (["diagnose"], "Missing option '--workflow'"),
    (["diagnose", "-w", "glaucoma", "--bogus"], "No such option: --bogus"),
    (["nosuchcmd"], "No such command 'nosuchcmd'"),
    (["phantoms", "generate", "-w", "glaucoma", "-n", "abc"], "Invalid value for '-n'"),
])
def test_usage_errors_are_one_line_and_exit_2(args, fragment):
    # click's usage errors (typer's vendored copy of click in typer >= 0.2x) used to escape main().
    res = run(*args)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("error: ") and fragment in res.stderr, res.stderr
