"""``dxgraph cases import-3mdbench`` and ``cases list`` as a new user meets them: bad input is
one line and exit 2, refused before anything is written; a set the rule doctor cannot use
is flagged at import; the case table stays readable at 80 columns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.subprocess_cli import one_error, run_cli

ROW = {"general_complaint": "I have itchy red patches.", "complaints": "They itch at night. Started a week ago.",
       "diagnosis": "eczema", "personality": "choleric"}


def _cli(*args, cwd=None, columns=None):
    return run_cli(*args, cwd=cwd, columns=columns)


_one_error = one_error


def _import(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return _cli("cases", "import-3mdbench", str(src), "-o", str(out), *extra)


def test_unwritable_out_folder_is_one_line(tmp_path):
    (tmp_path / "in.json").write_text(json.dumps({"k1": ROW}))
    (tmp_path / "afile").write_text("x")
    line = _one_error(_import(tmp_path / "in.json", tmp_path / "afile"))
    assert f"--out {str(tmp_path / 'afile')!r} is a file" in line
    line = _one_error(_import(tmp_path / "in.json", tmp_path / "afile" / "sub"))
    assert "cannot be created" in line
    if Path("/proc/self").is_dir():
        assert "'/proc/x' cannot be created" in _one_error(_import(tmp_path / "in.json", Path("/proc/x")))


def test_non_utf8_json_names_the_file(tmp_path):
    (tmp_path / "latin1.json").write_bytes(json.dumps({"k1": {**ROW, "complaints": "caf\u00e9"}}, ensure_ascii=False)
                                           .encode("latin-1"))
    line = _one_error(_import(tmp_path / "latin1.json", tmp_path / "out"))
    assert "latin1.json: not a UTF-8 JSON file (byte 0xe9" in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("row, expected", [
    ({**ROW, "personality": "bogus"}, "case 'k1': field 'personality': unknown temperament 'bogus'; use one of "
                                      "sanguine, choleric, melancholic, phlegmatic, neutral"),
    ({**ROW, "path": "empty.png"}, "case 'k1': field 'path': image "),
])
def test_bad_rows_are_refused_and_nothing_is_written(tmp_path, row, expected):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "in.json").write_text(json.dumps({"k0": ROW, "k1": row}))
    line = _one_error(_import(tmp_path / "in.json", tmp_path / "out"))
    assert expected in line, line
    if "path" in row:
        assert "empty.png' is empty (0 bytes)" in line, line
    assert not (tmp_path / "out").exists()


def test_bad_train_fraction_is_refused_before_images_are_written(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 16)
    (tmp_path / "in.json").write_text(json.dumps({"k1": {**ROW, "path": "a.png"}}))
    line = _one_error(_import(tmp_path / "in.json", tmp_path / "out", "--train-fraction", "2"))
    assert "--train-fraction must be between 0 and 1, got 2.0" in line
    assert not (tmp_path / "out").exists()


def test_empty_parquet_image_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"image": [b""], **{k: [ROW[k]] for k in ROW}}), tmp_path / "t.parquet")
    line = _one_error(_import(tmp_path / "t.parquet", tmp_path / "out"))
    assert "case '3mdb-0001': column 'image': empty image (0 bytes)" in line
    assert not (tmp_path / "out").exists()


def test_one_case_per_label_warns_that_the_rule_doctor_cannot_run(tmp_path):
    rows = {f"k{i}": {**ROW, "diagnosis": d} for i, d in enumerate(("eczema", "herpes", "acne", "hives"))}
    (tmp_path / "in.json").write_text(json.dumps(rows))
    res = _import(tmp_path / "in.json", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert "imported 4 cases (0 train, 4 test, 4 labels)" in res.stdout
    assert "warning: no train cases: the rule doctor ('--doctor rules') cannot run on this set" in res.stderr
    res = _import(tmp_path / "in.json", tmp_path / "out2", "--train-fraction", "1")
    assert res.returncode == 0 and "warning: no test cases" in res.stderr, res.stderr
    both = {"a1": ROW, "a2": ROW}
    (tmp_path / "two.json").write_text(json.dumps(both))
    res = _import(tmp_path / "two.json", tmp_path / "out3")
    assert res.returncode == 0 and "warning" not in res.stderr, res.stderr


def test_case_list_at_80_columns_cuts_no_value(tmp_path):
    res = _cli("cases", "list", columns=80)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(ln) for ln in lines) <= 80
    assert "…" not in res.stdout
    cells = [[c.strip() for c in ln.strip("│").split("│")] for ln in lines if ln.startswith("│ ")]
    rows = [c for c in cells if c[0]]  # a long diagnosis wraps onto a line of its own
    truth = json.loads(_cli("cases", "list", "--json").stdout)
    assert [c[0] for c in rows] == [r["id"] for r in truth]  # every id whole
    assert [c[1] for c in rows] == [r["split"] for r in truth]
    assert [c[3] for c in rows] == [r["sex"] or "" for r in truth]
    assert "allergic contact" in {c[2] for c in rows} and "eczema" in {c[2] for c in rows}
    wide = _cli("cases", "list", columns=200)
    assert "age" in wide.stdout and "facts" in wide.stdout and "…" not in wide.stdout
