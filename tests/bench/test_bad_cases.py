"""``dxgraph bench run --cases DIR`` with a bad case file: exit 2, one line naming the case and
the field, no traceback, and nothing stored (a run must not start on a case set it would trip
over halfway through).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dxgraph.cli import main
from dxgraph.store import Store

ROOT = Path(__file__).resolve().parents[2]

GOOD = [
    {"id": "good-01", "split": "train", "chief_complaint": "Red itchy patches in my elbow creases.",
     "facts": [{"id": "f1", "category": "symptom", "text": "It itches most at night."}],
     "diagnosis": "eczema", "differential": ["psoriasis"]},
    {"id": "good-02", "split": "test", "chief_complaint": "Spots on my forehead and chin.",
     "facts": [{"id": "f1", "category": "onset", "text": "They started at fifteen."}],
     "diagnosis": "acne"},
]


def _bad(**change) -> dict:
    case = {"id": "bad-07", "split": "test", "chief_complaint": "A sore, swollen eyelid.",
            "facts": [{"id": "f1", "category": "symptom", "text": "It hurts when I blink."}],
            "diagnosis": "stye", "differential": ["chalazion"]}
    for key, value in change.items():
        if value is None:
            case.pop(key)
        else:
            case[key] = value
    return case


# (bad case, the field the message must name, words it must also contain)
BAD = {
    "missing complaint": (_bad(chief_complaint=None), "'chief_complaint'", "missing"),
    "missing diagnosis": (_bad(diagnosis=None), "'diagnosis'", "missing"),
    "fact without text": (_bad(facts=[{"id": "f1", "category": "symptom"}]), "'facts.0.text'", "required"),
    "unknown label": (_bad(diagnosis="styee"), "'diagnosis'", "unknown label 'styee' (did you mean 'stye'?)"),
    "unknown differential": (_bad(differential=["chalazion", "pinkeye disease"]), "'differential[1]'",
                             "unknown label 'pinkeye disease'"),
    "bad sex": (_bad(sex="unknown"), "'sex'", "'female', 'male' or 'other'"),
    "broken image path": (_bad(images=[{"path": "photos/missing.png"}]), "'images[0].path'", "not found"),
}


def _write(folder: Path, bad: dict, *, as_json: bool = False) -> Path:
    folder.mkdir()
    (folder / "good.yaml").write_text(yaml.safe_dump({"defaults": {"synthetic": True}, "cases": GOOD}))
    cases = [GOOD[0] | {"id": "other-01"}, bad]
    if as_json:
        (folder / "bad.json").write_text(json.dumps(cases))
    else:
        (folder / "bad.yaml").write_text(yaml.safe_dump({"cases": cases}))
    return folder


def _run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dxgraph", *args])
    code = 0
    try:
        main()  # returns on success, sys.exit(code) otherwise
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _assert_nothing_stored(url: str) -> None:
    store = Store(url)
    assert store.list_runs() == [] and store.samples("bad") == []


@pytest.mark.parametrize("name", list(BAD))
def test_bad_case_file_exits_2_naming_case_and_field(name, tmp_path, monkeypatch, capsys):
    bad, field, words = BAD[name]
    folder = _write(tmp_path / "cases", bad)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    code, out, err = _run_main(monkeypatch, capsys, "bench", "run", "--run-id", "bad", "--cases", str(folder),
                               "--split", "all", "--db", url, "--no-progress")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: ") and "bad.yaml: case 'bad-07': field " + field in line, line
    assert words in line and "Traceback" not in err
    _assert_nothing_stored(url)


def test_corrupt_photo_refuses_an_image_run(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cases"
    _write(folder, _bad(images=[{"path": "eyelid.png"}]))
    (folder / "eyelid.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature, no image
    url = f"sqlite:///{tmp_path / 'store.db'}"
    code, out, err = _run_main(monkeypatch, capsys, "bench", "run", "--run-id", "bad", "--cases", str(folder),
                               "--split", "all", "--strategy", "dialogue+image", "--db", url, "--no-progress")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "case 'bad-07': field 'images[0].path': image " in err and "eyelid.png" in err
    assert "corrupt or truncated" in err and "Traceback" not in err
    _assert_nothing_stored(url)
    # A text-only run never shows the photo, so it does not need the photo to open.
    (tmp_path / "ids.txt").write_text("bad-07\n")
    code, out, err = _run_main(monkeypatch, capsys, "bench", "run", "--run-id", "text", "--cases", str(folder),
                               "--split", "test", "--cases-file", str(tmp_path / "ids.txt"), "--temperaments",
                               "neutral", "--db", url, "--no-progress")
    assert code == 0 and "complete" in out, (out, err)
    assert [r.case_id for r in Store(url).samples("text", "done")] == ["bad-07"]


def test_json_case_file_and_a_real_process(tmp_path):
    """The installed entry point, as a user runs it: the exit code and stderr of a process."""
    folder = _write(tmp_path / "cases", _bad(diagnosis=None), as_json=True)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-c", "from dxgraph.cli import main; main()", "bench", "run", "--run-id", "bad",
         "--cases", str(folder), "--split", "all", "--db", url],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "", (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr  # one line even on 80 columns
    assert "bad.json: case 'bad-07': field 'diagnosis': missing" in lines[0]
    _assert_nothing_stored(url)
