"""The CLI's help as a newcomer meets it: bare groups, -h, --version, examples, value names, lists."""

from __future__ import annotations

import sys

import pytest
import typer
from typer.testing import CliRunner

from dxgraph.cli import app, main
from dxgraph.cli.examples import EXAMPLES, split_items


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dxgraph", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_.value.code or 0, out.out, out.err


def _commands() -> list[str]:
    paths: list[str] = []

    def walk(command, path):
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            paths.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("args", [(), ("bench",), ("cases",), ("phantoms",)])
def test_a_bare_group_prints_its_help_and_exits_0(monkeypatch, capsys, args):
    code, out, err = _main(monkeypatch, capsys, *args)
    assert code == 0 and "Usage:" in out + err and "error" not in err


def test_version_and_short_help(monkeypatch, capsys):
    code, out, _ = _main(monkeypatch, capsys, "--version")
    assert code == 0 and out.startswith("dxgraph ") and out.strip().split()[-1][0].isdigit()
    code, out, _ = _main(monkeypatch, capsys, "bench", "run", "-h")
    assert code == 0 and "--run-id" in out


def test_every_command_has_an_example_and_plain_value_names():
    commands = _commands()
    assert set(commands) == set(EXAMPLES), set(commands) ^ set(EXAMPLES)
    runner = CliRunner()
    for path in commands:
        result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, path
        assert f"Example: {EXAMPLES[path]}" in result.output, path
        # every row: options, positional arguments and the help flag itself
        assert not any(f"<{t}" in result.output for t in ("list[", "str>", "int>", "float>", "bool>", "path>")), (
            path, result.output)


def test_choices_are_listed():
    result = CliRunner().invoke(app, ["bench", "run", "--help"], env={"COLUMNS": "200"})
    assert "[train|test|all]" in result.output


def test_list_options_take_repetition_and_commas(tmp_path):
    assert split_items(["a,b", "c", " d , "]) == ["a", "b", "c", "d"]
    odd = tmp_path / "scan,1.png"
    odd.write_bytes(b"x")
    assert split_items([str(odd), "x,y"], keep_paths=True) == [str(odd), "x", "y"]
    assert split_items(None) == []


def test_bench_run_takes_temperaments_and_strategies_either_way(monkeypatch, capsys):
    code, out, err = _main(monkeypatch, capsys, "bench", "run", "--run-id", "lists", "--limit", "1",
                           "--temperaments", "neutral,choleric", "--temperaments", "sanguine",
                           "--strategy", "single", "--no-progress")
    assert code == 0, err
    assert "3/3 done" in out


def test_tools_table_has_no_sphinx_literals():
    result = CliRunner().invoke(app, ["workflows", "tools"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "``" not in result.output


def test_positional_arguments_are_named_as_a_shell_user_reads_them():
    result = CliRunner().invoke(app, ["bench", "agreement", "--help"], env={"COLUMNS": "200"})
    rows = [line for line in result.output.splitlines() if "RUN_ID" in line or "--help" in line]
    assert any("RUN_ID" in r and "TEXT" in r for r in rows), result.output
    help_row = next(r for r in rows if "--help" in r)
    assert "bool" not in help_row.lower() and "-h" in help_row
    listed = CliRunner().invoke(app, ["workflows", "validate", "--help"], env={"COLUMNS": "200"})
    assert "TARGETS" in listed.output and "TEXT,..." in listed.output
    missing = CliRunner().invoke(app, ["bench", "agreement", "x"])
    assert missing.exit_code == 2 and "JUDGE_A" in missing.output
