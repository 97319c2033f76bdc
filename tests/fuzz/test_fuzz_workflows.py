"""Malformed workflows built from the built-ins: every one is accepted or refused with one
``FILE:LINE: message`` per problem, never another exception, in bounded time (pytest-timeout)."""

import random

import pytest

from dxgraph.errors import ConfigError
from dxgraph.workflows.loader import builtin_dir, parse_workflow
from tests.subprocess_cli import run_cli

SEED = 16
BUILTINS = sorted(builtin_dir().glob("*.yaml"))
_HOSTILE = ["[", "]", "{", "}", "'", '"', ":", "- ", "\t", "&a", "*a", "!!python/object:os.system", "\x00",
            "\x07", "\ufeff", "%", "@", "`", "|", ">", "? ", "#", "\\", "---\n", "...\n", "<<: *a\n", ": :"]


def _mutations(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(10)
    i = rng.randrange(len(lines))
    if kind == 0:  # insert a hostile token somewhere
        at = rng.randrange(len(text))
        return text[:at] + rng.choice(_HOSTILE) + text[at:]
    if kind == 1:  # truncate, with or without a final newline
        return text[: rng.randrange(1, len(text))]
    if kind == 2:  # drop a line
        return "".join(lines[:i] + lines[i + 1:])
    if kind == 3:  # duplicate a line
        return "".join(lines[:i] + [lines[i]] + lines[i:])
    if kind == 4:  # shift a line's indentation
        return "".join(lines[:i] + [" " * rng.choice([1, 2, 3, 5]) + lines[i]] + lines[i + 1:])
    if kind == 5:  # replace a scalar value with a hostile one
        if ": " in lines[i]:
            key = lines[i].split(": ", 1)[0]
            value = rng.choice([".inf", "1e400", "-1", "[]", "{}", "null", "~", "'x' * 9", "*nope",
                                "&a [*a]", "0x" + "f" * 40, "'" + "x" * 5000 + "'", "!!binary AAAA"])
            lines[i] = f"{key}: {value}\n"
        return "".join(lines)
    if kind == 6:  # nest deeply at one spot
        return text[: len(text) // 2] + "[" * rng.choice([70, 1000, 5000]) + text[len(text) // 2:]
    if kind == 7:  # an alias bomb appended
        width, depth = rng.choice([(9, 9), (4, 12), (50, 4)])
        bomb = f"b0: &b0 [{', '.join(['x'] * width)}]\n" + "".join(
            f"b{d}: &b{d} [{', '.join([f'*b{d - 1}'] * width)}]\n" for d in range(1, depth))
        return text + bomb
    if kind == 8:  # break a rule
        rules = [n for n, ln in enumerate(lines) if ln.strip().startswith("rule:")]
        if rules:
            n = rng.choice(rules)
            indent = lines[n][: len(lines[n]) - len(lines[n].lstrip())]
            lines[n] = indent + "rule: " + rng.choice([
                "\"(((x**8)**8)**8)**8 > 1\"", "\"'%.999999999f' % 1.0 == 'a'\"", "\"'a' * 10**8 > x\"",
                "__import__('os')", "x.__class__", "\"x > 1e400\"", "'", "\"1/0 > x\""]) + "\n"
        return "".join(lines)
    # swap two lines
    j = rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def _cases(n: int) -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    out = []
    for k in range(n):
        src = BUILTINS[k % len(BUILTINS)]
        text = src.read_text()
        for _ in range(rng.choice([1, 1, 2, 3])):
            text = _mutations(text, rng)
        out.append((f"{src.stem}-{k}", text))
    return out


CASES = _cases(200)


@pytest.mark.parametrize("name, text", CASES, ids=[c[0] for c in CASES])
def test_a_malformed_workflow_is_refused_with_file_line_errors(name, text):
    try:
        parse_workflow(text, f"{name}.yaml")
    except ConfigError as exc:
        errors = getattr(exc, "errors", [exc])
        for err in errors:
            assert err.file == f"{name}.yaml" and isinstance(err.line, int) and err.line >= 1, str(err)
            assert "\n" not in err.message and "Traceback" not in err.message
            assert len(err.message) < 2000


@pytest.mark.slow
def test_malformed_workflows_through_the_cli_exit_2_without_a_traceback(tmp_path):
    for name, text in CASES[::10]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        res = run_cli("workflows", "validate", str(path), timeout=30)
        if res.returncode == 0:
            continue
        assert res.returncode == 2 and "Traceback" not in res.stderr, (name, res.stderr[-800:])
        assert res.stderr.splitlines()[0].startswith(f"{path}:"), (name, res.stderr[:400])
