"""``dxgraph workflows validate|tools|list``, ``diagnose --overlay`` and help texts as a user runs them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dxgraph.cli import app
from dxgraph.errors import DxGraphError
from dxgraph.workflows.loader import builtin_dir


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, list(args), **kwargs)


def test_validate_a_folder_checks_every_yaml_and_yml_in_it(tmp_path):
    shutil.copy(builtin_dir() / "glaucoma.yaml", tmp_path / "a.yaml")
    text = (builtin_dir() / "cardiomegaly.yaml").read_text()
    (tmp_path / "b.yml").write_text(text.replace("rule: ctr > 0.5", "rule: ctr > 0.5\n    wieght: 2"))
    (tmp_path / "notes.txt").write_text("not a workflow")
    r = invoke("workflows", "validate", str(tmp_path))
    assert r.exit_code == 2
    assert f"ok {tmp_path / 'a.yaml'} (glaucoma" in r.stdout
    assert f"{tmp_path / 'b.yml'}:" in r.stderr and "unknown key 'wieght'" in r.stderr and "did you mean 'weight'?" in r.stderr
    assert "notes.txt" not in r.stdout + r.stderr


def test_validate_a_builtin_id_validates_its_file():
    r = invoke("workflows", "validate", "glaucoma")
    assert r.exit_code == 0, r.output
    assert f"ok {builtin_dir() / 'glaucoma.yaml'} (glaucoma v" in r.stdout


def test_validate_names_what_a_missing_target_could_have_been(tmp_path):
    r = invoke("workflows", "validate", "glaucomma")
    assert r.exit_code == 2 and "'glaucomma' is not a file, a folder or a built-in workflow id (cardiomegaly" in r.stderr
    r = invoke("workflows", "validate", str(tmp_path))
    assert r.exit_code == 2 and "holds no .yaml or .yml files" in r.stderr


def test_validate_reports_every_error_sorted_by_file_then_line(tmp_path):
    text = (builtin_dir() / "glaucoma.yaml").read_text()
    broken = (text.replace("\nquestion:", "\nqestion:")
              .replace("weight: 1\n", "wieght: 1\n", 1)
              .replace("tool: segment_optic_disc_cup", "tool: segment_optic_disk_cup", 1))
    (tmp_path / "z.yaml").write_text(broken)
    (tmp_path / "a.yaml").write_text(text.replace("name: image", "name: image\n    colour: red", 1))
    r = invoke("workflows", "validate", str(tmp_path / "z.yaml"), str(tmp_path / "a.yaml"))
    assert r.exit_code == 2
    lines = [line for line in r.stderr.splitlines() if line.startswith(str(tmp_path))]
    keys = [(line.split(":")[0], int(line.split(":")[1])) for line in lines]
    assert keys == sorted(keys) and len(lines) == 5, r.stderr
    # the schema errors did not hide the unknown tool, which needs the tool registry
    assert any("unknown tool 'segment_optic_disk_cup'" in line for line in lines)
    assert r.stderr.rstrip().endswith("5 error(s) in 2 of 2 workflow file(s)")


def test_validate_a_yaml_syntax_error_is_one_plain_line(tmp_path):
    bad = tmp_path / "w.yaml"
    bad.write_text((builtin_dir() / "glaucoma.yaml").read_text().replace("  - name: image\n", "  - name: image\n   dims: color\n", 1))
    r = invoke("workflows", "validate", str(bad))
    [line] = [x for x in r.stderr.splitlines() if x.startswith(str(bad))]
    assert r.exit_code == 2 and "bad indentation: key 'dims' is at column 4" in line and "<block" not in r.stderr


def test_tools_table_shows_bracketed_text_verbatim():
    r = invoke("workflows", "tools", env={"COLUMNS": "400"})
    assert r.exit_code == 0
    assert "[x0, y0, x1, y1]" in r.stdout


def test_diagnose_json_artifact_points_at_the_overlay_asked_for(tmp_path):
    out = tmp_path / "out.png"
    r = invoke("diagnose", "-w", "glaucoma", "-i", "sample:retina", "--json", "--overlay", str(out))
    assert r.exit_code == 0, r.output
    paths = [i["artifacts"]["overlay"] for i in json.loads(r.stdout)["indicators"] if "overlay" in i["artifacts"]]
    assert paths == [str(out.resolve())]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def refused(*args) -> str:
    """The one-line message of a refused command (``main`` prints it and exits 2)."""
    r = invoke(*args)
    assert isinstance(r.exception, DxGraphError), r.output + repr(r.exception)
    return str(r.exception)


def test_overlay_must_be_a_writable_png_path_and_is_checked_before_the_run(tmp_path):
    (tmp_path / "afile").write_text("x")
    msg = refused("diagnose", "-w", "glaucoma", "-i", "sample:retina", "--overlay", str(tmp_path / "afile" / "o.png"))
    assert f"cannot write --overlay '{tmp_path / 'afile' / 'o.png'}'" in msg and "is a file, not a folder" in msg
    msg = refused("diagnose", "-w", "glaucoma", "-i", "sample:retina", "--overlay", str(tmp_path))
    assert "is a folder" in msg and f"'{tmp_path / 'overlay.png'}'" in msg
    msg = refused("diagnose", "-w", "glaucoma", "-i", "sample:retina", "--overlay", str(tmp_path / "ov.txt"))
    assert "must be a .png file path" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a /proc to be unwritable")
def test_overlay_in_an_unwritable_folder_is_one_line_and_exit_2():
    r = subprocess.run([str(Path(sys.executable).with_name("dxgraph")), "diagnose", "-w", "glaucoma", "-i",
                        "sample:retina", "--no-store", "--overlay", "/proc/x.png"], capture_output=True, text=True, timeout=180)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "cannot write --overlay '/proc/x.png'" in lines[0], r.stderr


def test_diagnose_says_where_the_overlay_went(tmp_path):
    out = tmp_path / "sub" / "ov.PNG"
    r = invoke("diagnose", "-w", "glaucoma", "-i", "sample:retina", "--no-store", "--overlay", str(out))
    assert r.exit_code == 0, r.output
    assert f"overlay: {out.resolve()}" in r.stdout and out.is_file()


def test_validate_a_missing_target_is_an_error_line():
    r = invoke("workflows", "validate", "missing.yaml")
    assert r.exit_code == 2
    assert r.stderr.splitlines() == ["error: workflow file 'missing.yaml' does not exist"]


def test_key_columns_are_never_cut_at_80_columns():
    def dxgraph(*args):  # a real terminal width: the in-process console was sized when it was imported
        r = subprocess.run([str(Path(sys.executable).with_name("dxgraph")), "workflows", *args], capture_output=True,
                           text=True, timeout=180, env={**os.environ, "COLUMNS": "80"})
        assert r.returncode == 0, r.stderr
        return r.stdout

    def rows(*args):
        out = dxgraph(*args)
        assert max(map(len, out.splitlines())) <= 80
        return [line.split("│") for line in out.splitlines() if line.startswith("│")]

    tools = {t["name"] for t in json.loads(dxgraph("tools", "--json"))}
    assert tools and tools <= {cells[1].strip() for cells in rows("tools")}
    workflows = json.loads(dxgraph("list", "--json"))
    table = rows("list")
    assert {w["id"] for w in workflows} <= {cells[1].strip() for cells in table}
    paths = "".join(cells[4].strip() for cells in table)
    assert all(w["path"] in paths for w in workflows)


def test_help_names_every_sample_and_explains_each_option():
    from dxgraph.tools.imaging import SAMPLES

    def help_of(*cmd):
        r = invoke(*cmd, "--help", env={"COLUMNS": "80"})
        assert r.exit_code == 0
        return " ".join(r.stdout.replace("│", " ").split())

    text = help_of("diagnose")
    assert "…" not in text and all(name in text for name in SAMPLES)
    assert "evaluate only the first N rows" in help_of("evaluate") and "built-in id or YAML path" in help_of("evaluate")
    text = help_of("phantoms", "generate")
    assert "--count" in text and "number of cases" in text and "held out" in text and "--force" in text
    assert "JSON array" in help_of("workflows", "tools")
    assert "guideline passages" in help_of("workflows", "draft")


def test_draft_will_not_overwrite_a_file_without_force(tmp_path):
    out = tmp_path / "d.yaml"
    out.write_text("# reviewed by hand\n")
    msg = refused("workflows", "draft", "Is there pleural effusion?", "-o", str(out))
    assert "already exists; pass --force" in msg and out.read_text() == "# reviewed by hand\n"
