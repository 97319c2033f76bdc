"""User text in CLI messages is printed as written: no emoji codes, no markup."""

from tests.subprocess_cli import run_cli


def _refused(res) -> str:
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    return res.stderr


def test_line_numbers_stay_numbers_and_brackets_stay_text(tmp_path):
    folder = tmp_path / "[red]x[" / "nope]"  # the path reads "[red]x[/nope]": markup to Rich
    folder.mkdir(parents=True)
    for line in (100, 1234):
        wf = folder / f"w{line}.yaml"
        wf.write_text("#\n" * (line - 2) + "id: a\nid: b\n")  # the duplicate key is on line LINE
        err = _refused(run_cli("workflows", "validate", str(wf)))
        assert f"{wf}:{line}: key 'id' appears twice" in err and "💯" not in err and "🔢" not in err, err
    missing = folder / ":thumbs_up: [red]m[/red].yaml"
    err = _refused(run_cli("workflows", "validate", str(missing)))
    assert str(missing) in err and "👍" not in err, err
