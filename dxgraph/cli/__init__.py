"""The ``dxgraph`` command line.

Each command group lives in its own module beside this one. Every command runs through
``main``, which turns a ``DxGraphError`` into one red line on stderr and exit code 2: a
user never sees a traceback for a mistake they can fix.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from dxgraph.errors import DxGraphError

__all__ = ["app", "main", "console", "err_console"]

# Wide enough that no message or table row is ever folded when output goes to a pipe.
_PIPE_WIDTH = 10_000


class _Console(Console):
    """A Rich console that does not wrap when its stream is not a terminal.

    Rich folds piped output at 80 columns (or at the width of whatever terminal stdin is),
    which splits ``FILE:LINE: message`` lines and table rows that scripts and ``grep`` read
    one line at a time. The check is made at each print, so a stream swapped in later (a
    test runner's capture, a pager) is judged as it is. An explicit ``COLUMNS`` still wins.
    """

    def __init__(self, *args, **kwargs):
        # ":100:" in "file.yaml:100: ..." is an emoji code to Rich; no message here wants one.
        kwargs.setdefault("emoji", False)
        super().__init__(*args, **kwargs)

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(_PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    @property
    def soft_wrap(self) -> bool:
        return self._soft_wrap or (self._width is None and not self.is_terminal)

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap = value


console = _Console()
err_console = _Console(stderr=True)

app = typer.Typer(
    name="dxgraph",
    help="Multi-agent diagnostic workflows and telemedicine dialogue benchmarks "
    "(research software, not for clinical use).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version as _v

        console.print(f"dxgraph {_v('dxgraph')}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", help="Print the version and exit.", metavar="",
                                      callback=_print_version, is_eager=True),
) -> None:
    """Multi-agent diagnostic workflows and telemedicine dialogue benchmarks (research software, not for clinical use)."""


@app.command()
def version() -> None:
    """Print the dxgraph version."""
    from importlib.metadata import version as _v

    console.print(_v("dxgraph"))


def _register() -> None:
    from dxgraph.cli import cases, models, serve, workflow_authoring, workflows  # noqa: F401

    app.add_typer(models.app, name="models")
    app.add_typer(workflows.app, name="workflows")
    app.add_typer(cases.app, name="cases")
    app.add_typer(serve.app, name="serve")
    # bench_judge adds `bench judge`, `bench agreement`; bench_hints adds `bench hints`
    from dxgraph.cli import bench, bench_hints, bench_judge  # noqa: F401

    app.add_typer(bench.app, name="bench")
    app.add_typer(workflows.phantoms_app, name="phantoms")
    from dxgraph.cli import datasets

    app.add_typer(datasets.app, name="datasets")
    for command in workflows.TOP_LEVEL:
        app.command()(command)
    from dxgraph.cli.ui import ui as _ui; app.command(name="ui")(_ui)  # noqa: E702
    from dxgraph.cli.examples import apply

    apply(app)


_register()


def _click_errors() -> tuple[type[Exception], ...]:
    """click's usage/parameter error base class, and typer's vendored copy of it (typer >= 0.2x
    ships click as ``typer._click``, whose errors are not ``click.ClickException``)."""
    types: list[type[Exception]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            types.append(__import__(module, fromlist=["ClickException"]).ClickException)
        except ImportError:
            pass
    return tuple(types)


def _usage_line(exc: Exception) -> str:
    """A click error as one line: its message, and where to read the command's usage."""
    ctx = getattr(exc, "ctx", None)
    where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    return f"{escape(exc.format_message().rstrip('.'))}{where}"


def main() -> None:
    """Entry point: run the app, turning dxgraph errors into one line and exit code 2."""
    try:
        # In non-standalone mode click returns a command's typer.Exit code instead of raising.
        code = app(prog_name="dxgraph", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except DxGraphError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:  # before Exit: in recent typer, Abort is a subclass of Exit
        err_console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except _click_errors() as exc:  # usage errors arrive here in non-standalone mode
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
            sys.exit(0)
        err_console.print(f"[red]error:[/red] {escape(_usage_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2) or 2)
