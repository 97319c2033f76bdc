"""What a long command is doing, on a terminal only: a named phase with a spinner on stderr.

Piped output, ``--json`` and tests see nothing from here, so stdout stays what scripts read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["phase"]


@contextlib.contextmanager
def phase(text: str, *, quiet: bool = False, console=None) -> Iterator[None]:
    """Show ``text`` with a spinner on stderr while the block runs (a terminal, not ``quiet``)."""
    if console is None:
        from dxgraph.cli import err_console as console
    if quiet or not console.is_terminal:
        yield
        return
    with console.status(text, spinner="dots"):
        yield
    console.print(f"{text}: done", highlight=False, markup=False)
