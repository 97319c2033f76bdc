"""What ``--help`` shows beyond each option's text: one example per command, plain value names.

``EXAMPLES`` is keyed by the command's path under ``dxgraph``; ``apply`` copies each into the
command's epilog when the app is assembled (tests/test_cli_help.py checks that no command lacks
one), names each option's value the way a shell user reads it (``TEXT``, ``INTEGER``, a flag
shows none) instead of Python types (``<list[str]>``), and lists the choices of ``CHOICES``.
``split_items`` lets every list option take both repetition and commas.
"""

from __future__ import annotations

import inspect
import os
import typing
from pathlib import Path

import typer
from typer.models import ArgumentInfo, OptionInfo

__all__ = ["CHOICES", "EXAMPLES", "apply", "split_items"]

EXAMPLES: dict[str, str] = {
    "version": "dxgraph version",
    "diagnose": "dxgraph diagnose --workflow glaucoma --image sample:retina",
    "evaluate": "dxgraph evaluate --workflow glaucoma --data ./phantoms --limit 5",
    "ui": "dxgraph ui --port 7860 --db sqlite:///runs.db",
    "models check": "dxgraph models check doctor",
    "models list": "dxgraph models list --json",
    "models export": "dxgraph models export smollm2 ./smollm2-hf",
    "workflows list": "dxgraph workflows list",
    "workflows show": "dxgraph workflows show glaucoma",
    "workflows validate": "dxgraph workflows validate my_workflow.yaml",
    "workflows schema": "dxgraph workflows schema > workflow.schema.json",
    "workflows tools": "dxgraph workflows tools --json",
    "workflows draft": "dxgraph workflows draft 'Is this retina glaucomatous?' -o draft.yaml",
    "workflows calibrate": "dxgraph workflows calibrate glaucoma --data ./phantoms -o calibrated.yaml",
    "cases list": "dxgraph cases list --split test",
    "cases show": "dxgraph cases show psoriasis-03",
    "cases validate": "dxgraph cases validate ./my_cases",
    "cases import-3mdbench": "dxgraph cases import-3mdbench ./3mdbench.csv -o ./cases",
    "serve tools": "dxgraph serve tools --port 8100",
    "bench run": "dxgraph bench run --run-id smoke --limit 2 --temperaments neutral,choleric",
    "bench retry": "dxgraph bench retry smoke",
    "bench report": "dxgraph bench report smoke --html report.html",
    "bench judge": "dxgraph bench judge smoke --judge openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1 --name qwen",
    "bench agreement": "dxgraph bench agreement smoke run qwen",
    "bench hints": "dxgraph bench hints --classifier ./cnn-folder --cases ./cases-3mdb --out top3.csv",
    "datasets list": "dxgraph datasets list --layout",
    "bench compare": "dxgraph bench compare smoke smoke-v2",
    "bench list": "dxgraph bench list",
    "phantoms generate": "dxgraph phantoms generate --workflow glaucoma -n 20 -o ./phantoms",
}


# Options whose value is one of a fixed set: "command path --option" -> the set.
CHOICES: dict[str, tuple[str, ...]] = {
    "bench run --split": ("train", "test", "all"),
    "cases list --split": ("train", "test", "all"),
    "bench hints --split": ("train", "test", "all"),
}

_TYPE_NAMES = {str: "TEXT", int: "INTEGER", float: "NUMBER", Path: "PATH"}
# typer's own labels (``<str>``, ``<list[str]>``) for what it shows in the type column
_LABELS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "file": "PATH",
           "directory": "PATH", "bool": ""}


def split_items(values: list[str] | None, *, keep_paths: bool = False) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: a list option given repeated, comma-separated or both.

    ``keep_paths``: a value naming an existing file is kept whole (a file name may hold a comma).
    """
    out: list[str] = []
    for value in values or []:
        if keep_paths and os.path.exists(value):
            out.append(value)
            continue
        out.extend(item.strip() for item in value.split(",") if item.strip())
    return out


def _metavar(annotation) -> str:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        annotation = args[0]
    if annotation is bool:
        return ""
    if typing.get_origin(annotation) is list:
        inner = typing.get_args(annotation)[0]
        return f"{_TYPE_NAMES.get(inner, 'TEXT')},..."
    return _TYPE_NAMES.get(annotation, "TEXT")


def _plain_label(label: str | None) -> str | None:
    """typer's ``<list[str]>`` -> ``TEXT,...``; ``<bool>`` -> nothing (a flag takes no value)."""
    if not label or not (label.startswith("<") and label.endswith(">")):
        return label
    inner = label[1:-1]
    if inner.startswith("list[") and inner.endswith("]"):
        item = _plain_label(f"<{inner[5:-1]}>")
        return f"{item or 'TEXT'},..."
    if "|" in inner:
        return f"[{inner}]"
    return _LABELS.get(inner, inner.upper()) or None


def _plain_types() -> None:
    """Make typer's type column read as shell value names for arguments and flags too.

    typer shows an option's ``metavar`` when it has one (``_name_values`` sets those), but an
    argument's type and the ``--help`` flag always go through ``display_type``, which prints
    Python types (``<str>``, ``<bool>``). One wrapper, applied once, renames them.
    """
    from typer.core import TyperArgument, TyperOption

    for cls in (TyperArgument, TyperOption):
        original = cls.display_type_rich
        if getattr(original, "_dxgraph_plain", False):
            continue

        def display_type_rich(self, ctx, _original=original):
            if getattr(self, "is_flag", False) and not self.metavar:
                return None
            return _plain_label(_original(self, ctx))

        display_type_rich._dxgraph_plain = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _name_values(info, path: str) -> None:
    try:
        hints = typing.get_type_hints(info.callback, include_extras=True)
    except Exception:  # an annotation that cannot be resolved keeps typer's display
        return
    # Under `from __future__ import annotations` each resolution builds new OptionInfo objects:
    # keep the resolved ones so the metavars set below are the ones typer reads.
    info.callback.__annotations__.update(hints)
    for name, param in inspect.signature(info.callback).parameters.items():
        annotation = hints.get(name, param.annotation)
        option = param.default if isinstance(param.default, (OptionInfo, ArgumentInfo)) else None
        if typing.get_origin(annotation) is typing.Annotated:
            option = next((m for m in typing.get_args(annotation)[1:]
                           if isinstance(m, (OptionInfo, ArgumentInfo))), option)
        if option is None or option.metavar is not None:
            continue
        if isinstance(option, ArgumentInfo):  # a positional is named as a shell user reads it
            option.metavar = name.upper()
            continue
        flag = next((d for d in option.param_decls or () if d.startswith("--")), f"--{name.replace('_', '-')}")
        choices = CHOICES.get(f"{path} {flag}")
        option.metavar = "[" + "|".join(choices) + "]" if choices else _metavar(annotation)


def _name(info) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def apply(app: typer.Typer, prefix: str = "") -> None:
    """Set each registered command's epilog to its example (groups recursively)."""
    _plain_types()
    for info in app.registered_commands:
        _name_values(info, f"{prefix}{_name(info)}")
        example = EXAMPLES.get(f"{prefix}{_name(info)}")
        if example and not info.epilog:
            info.epilog = f"Example: {example}"
    for group in app.registered_groups:
        apply(group.typer_instance, f"{prefix}{group.name} ")
