"""Case, persona and label-table files are parsed under the same YAML limits as workflows.

An alias bomb (nine aliases nine wide, 449 bytes) expands to 9**9 values: the plain safe
loader builds it for minutes and gigabytes; the bounded loader refuses it in one line.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dxgraph.errors import ConfigError, DxGraphError, InputError
from dxgraph.simulator.cases import load_case_file
from dxgraph.simulator.labels import load_label_table
from dxgraph.simulator.personas import load_persona_file

_BOMB = "\n".join(
    ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
       f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]" for i in range(8)]
) + "\n"
_DEEP = "x: " + "[" * 5000 + "]" * 5000 + "\n"


@pytest.mark.parametrize("text", [_BOMB, _DEEP], ids=["alias-bomb", "deep-nesting"])
@pytest.mark.parametrize("loader, error", [(load_case_file, InputError),
                                           (load_persona_file, ConfigError),
                                           (load_label_table, ConfigError)],
                         ids=["cases", "personas", "labels"])
def test_hostile_yaml_is_one_line_not_a_hang(tmp_path: Path, text: str, loader, error):
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    start = time.monotonic()
    with pytest.raises(error) as info:
        loader(path)
    assert time.monotonic() - start < 10  # the unbounded loader does not return for minutes
    message = str(info.value)
    assert "\n" not in message and "hostile.yaml" in message
    assert isinstance(info.value, DxGraphError)
