"""``dxgraph workflows validate|tools`` and ``diagnose --overlay`` as a user runs them."""

import json
import shutil

from typer.testing import CliRunner

from dxgraph.cli import app
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
