"""The one exception tree of dxgraph.

::

    DxGraphError                 base; never raised directly
    ├── ConfigError              a config or workflow file is wrong (file:line when known)
    ├── InputError               an image, case file or CLI argument is unusable
    ├── ToolError                a tool could not produce its result (recoverable: the
    │                            indicator becomes ``unavailable`` and the run goes on)
    ├── ModelError               a model call failed; ``except ModelError`` catches all three
    │   ├── ModelNotConfigured   the model cannot be asked as configured (not an http(s) URL,
    │   │                        images sent to a text-only model): fix the config, not the server
    │   ├── ModelUnavailable     the endpoint gave no answer: its retries ran out, or it
    │   │                        refused the request with a status not worth retrying
    │   └── ModelOutputError     the model answered, but its reply stayed unusable (invalid
    │                            structured output after the repairs)
    └── StoreError               the result store cannot be opened or written

User-fixable errors say what to do next and quote identifiers with ``!r``. Anything that is
not a ``DxGraphError`` is a bug and is allowed to raise.
"""

from __future__ import annotations

__all__ = [
    "DxGraphError",
    "ConfigError",
    "InputError",
    "ToolError",
    "ModelError",
    "ModelNotConfigured",
    "ModelUnavailable",
    "ModelOutputError",
    "StoreError",
]


class DxGraphError(Exception):
    """Base of every error dxgraph raises on purpose."""


class ConfigError(DxGraphError):
    """A configuration or workflow file is invalid.

    Args:
        message: what is wrong and how to fix it.
        file: the file it was read from, if any.
        line: the 1-based line in that file, if known.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        self.message = message
        self.file = file
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.message}"
        if self.file:
            return f"{self.file}: {self.message}"
        return self.message


class InputError(DxGraphError):
    """An input (image, case, argument) cannot be used as given."""


class ToolError(DxGraphError):
    """A tool failed in a way that should make its indicator unavailable, not crash the run."""


class ModelError(DxGraphError):
    """A model call failed; the subclass says why. Catch this to handle any of them."""


class ModelNotConfigured(ModelError):
    """The model cannot be asked as configured; retrying the same call cannot help."""


class ModelUnavailable(ModelError):
    """The endpoint gave no usable answer: retries exhausted or a non-retryable HTTP error."""


class ModelOutputError(ModelError):
    """The model answered, but its reply stayed unusable after the allowed repairs."""


class StoreError(DxGraphError):
    """The result store could not be opened or written."""
