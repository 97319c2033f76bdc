"""Cache keys come from a tool's own code: editing the tool server or a phantom generator
must not invalidate every cached segmentation (it did while the key hashed all tools/*.py)."""

from __future__ import annotations

import inspect

import dxgraph.tools.measurement as measurement
import dxgraph.tools.segmentation as segmentation
from dxgraph.tools.cache import code_digest, code_files


def _names(module) -> set[str]:
    return {p.relative_to(p.parents[1]).as_posix() for p in code_files(inspect.getsourcefile(module))}


def test_a_segmenter_is_keyed_by_its_own_code_and_what_it_imports():
    names = _names(segmentation)
    assert {"tools/segmentation.py", "tools/seg_fundus.py", "tools/seg_chest.py", "tools/registry.py"} <= names
    assert "tools/server.py" not in names and "tools/remote.py" not in names
    assert not any(n.startswith("phantoms/") for n in names)


def test_unrelated_tools_do_not_share_their_code_keys():
    assert "tools/seg_fundus.py" not in _names(measurement)
    assert code_digest(inspect.getsourcefile(measurement)) != code_digest(inspect.getsourcefile(segmentation))


def test_the_digest_follows_an_edit_of_an_imported_module(tmp_path, monkeypatch):
    pkg = tmp_path / "dxgraph_fake"
    (tmp_path / "tool_mod.py").write_text("import json\n", encoding="utf-8")
    before = code_digest.__wrapped__(str(tmp_path / "tool_mod.py"))
    (tmp_path / "tool_mod.py").write_text("import json  # edited\n", encoding="utf-8")
    assert code_digest.__wrapped__(str(tmp_path / "tool_mod.py")) != before
    assert not pkg.exists()
