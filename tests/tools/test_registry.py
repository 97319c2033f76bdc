"""The tool registry and its content-addressed cache: keys, hits and misses, lazy arrays, versions."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from typing import Literal, NamedTuple

import numpy as np
import pytest

from dxgraph.errors import ConfigError, ToolError
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.cache import Ref, ToolCache, call_key, file_digest, value_digest
from dxgraph.tools.registry import FilePath, ToolContext, get_tool, tool
from dxgraph.tools.runner import ToolRunner

CALLS: dict[str, int] = {}
_lock = threading.Lock()


def _count(name: str) -> None:
    with _lock:
        CALLS[name] = CALLS.get(name, 0) + 1


class _Split(NamedTuple):
    low: Mask
    high: Mask


@tool(name="_test_reg_split", version="1")
def _split(image: Image, cut: float = 0.5, mode: Literal["gt", "ge"] = "gt", ctx: ToolContext = None) -> _Split:  # type: ignore[assignment]
    """Split pixels at a cut.

    Args:
        image: the image to split.
        cut: pixels above it go to ``high``.
        mode: strict or not.
    """
    _count("split")
    high = image.array > cut if mode == "gt" else image.array >= cut
    return _Split(Mask(~high, image.spacing, "low"), Mask(high, image.spacing, "high"))


@tool(name="_test_reg_fraction", version="1", outputs=("fraction",), units={"fraction": "ratio"})
def _fraction(mask: Mask) -> float:
    """Share of pixels set.

    Args:
        mask: the mask.
    """
    _count("fraction")
    return float(mask.array.mean())


@tool(name="_test_reg_read", version="1")
def _read(path: FilePath, scale: int = 1) -> Image:
    """Read numbers from a text file.

    Args:
        path: the file.
        scale: multiply by this.
    """
    _count("read")
    return Image(np.array([float(x) for x in open(path).read().split()], dtype=np.float32) * scale,
                 spacing=(0.5,), source=str(path), meta={"kind": "toy", "nested": {"dropped": True}})


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def _image(values=(0.1, 0.7, 0.9, 0.2)) -> Image:
    return Image(np.array(values, dtype=np.float32), spacing=(1.0,))


# ---------------------------------------------------------------- schema from hints and docstring


def test_schema_comes_from_hints_and_docstring():
    spec = get_tool("_test_reg_split")
    assert spec.outputs == ("low", "high")
    assert {k: p.kind for k, p in spec.params.items()} == {"image": "input", "cut": "arg", "mode": "arg",
                                                           "ctx": "context"}
    schema = spec.json_schema()
    props = schema["parameters"]["properties"]
    assert "ctx" not in props
    assert props["mode"]["enum"] == ["gt", "ge"]
    assert props["cut"] == {"type": "number", "description": "pixels above it go to ``high``.", "x-kind": "arg",
                            "default": 0.5}
    assert schema["parameters"]["required"] == ["image"]
    assert schema["description"] == "Split pixels at a cut."
    assert get_tool("_test_reg_read").params["path"].kind == "input"
    assert get_tool("_test_reg_fraction").units == {"fraction": "ratio"}


def test_arg_checks():
    spec = get_tool("_test_reg_split")
    assert spec.check_arg("cut", 1) is None
    assert "number" in spec.check_arg("cut", True)
    assert "one of" in spec.check_arg("mode", "lt")
    assert "has no arg" in spec.check_arg("image", 1)
    assert "has no arg" in spec.check_arg("nope", 1)


def test_unknown_tool_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown tool '_nope'"):
        get_tool("_nope")


def test_a_second_tool_of_the_same_name_is_refused():
    def other(image: Image) -> Image:
        return image

    with pytest.raises(ValueError, match="registered twice"):
        tool(other, name="_test_reg_split")


# ---------------------------------------------------------------- keys


def test_call_key_is_content_addressed():
    spec = get_tool("_test_reg_split")
    base = call_key(spec, {"image": "d1"}, {"cut": 0.5, "mode": "gt"})
    assert base == call_key(spec, {"image": "d1"}, {"mode": "gt", "cut": 0.5})  # order does not matter
    assert base != call_key(spec, {"image": "d2"}, {"cut": 0.5, "mode": "gt"})
    assert base != call_key(spec, {"image": "d1"}, {"cut": 0.6, "mode": "gt"})
    assert base != call_key(dataclasses.replace(spec, version="2"), {"image": "d1"}, {"cut": 0.5, "mode": "gt"})
    assert base != call_key(get_tool("_test_reg_fraction"), {"image": "d1"}, {"cut": 0.5, "mode": "gt"})


def test_call_key_changes_when_the_tool_code_changes(tmp_path, monkeypatch):
    """Editing a tool's module invalidates its cache even when nobody bumps the version."""
    import importlib
    import sys

    from dxgraph.tools import cache

    module = tmp_path / "_edited_tool.py"
    module.write_text(
        "from dxgraph.tools.registry import tool\n"
        "@tool(name='_test_reg_edited')\n"
        "def edited(x: float) -> float:\n"
        "    return x * 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("_edited_tool")
    spec = get_tool("_test_reg_edited")
    before = call_key(spec, {}, {"x": 1.0})
    assert before == call_key(spec, {}, {"x": 1.0})
    module.write_text(module.read_text().replace("x * 2", "x * 3"))
    cache.code_digest.cache_clear()  # a new process reads the sources afresh
    try:
        assert call_key(spec, {}, {"x": 1.0}) != before
    finally:
        sys.modules.pop("_edited_tool", None)


def test_digests_depend_on_content_only(tmp_path):
    a = np.arange(6, dtype=np.float32)
    assert value_digest(Image(a.copy(), spacing=(1.0,))) == value_digest(Image(a.copy(), spacing=(2.0,)))
    assert value_digest(Image(a)) != value_digest(Image(a.reshape(2, 3)))  # shape is content
    assert value_digest(Image(a)) != value_digest(Image(a.astype(np.float64)))  # so is dtype
    (tmp_path / "x.txt").write_text("1 2 3")
    (tmp_path / "y.txt").write_text("1 2 3")
    assert file_digest(tmp_path / "x.txt") == file_digest(tmp_path / "y.txt")
    (tmp_path / "y.txt").write_text("1 2 4")
    assert file_digest(tmp_path / "x.txt") != file_digest(tmp_path / "y.txt")
    assert value_digest({"b": 1, "a": 2}) == value_digest({"a": 2, "b": 1})


# ---------------------------------------------------------------- the cache itself


def test_memory_cache_hits_and_misses_and_evicts():
    cache = ToolCache(None, max_items=2)
    assert cache.get("k1") is None and cache.misses == 1
    cache.put("k1", {"value": 1.5})
    refs = cache.get("k1")
    assert refs["value"].value == 1.5 and refs["value"].digest == "k1:value" and cache.hits == 1
    cache.put("k2", {"value": 2})
    cache.put("k3", {"value": 3})
    assert cache.get("k1") is None  # least recently used, evicted
    assert cache.get("k3")["value"].value == 3


def test_disk_cache_loads_scalars_at_once_and_arrays_lazily(tmp_path):
    image = Image(np.arange(12, dtype=np.float32).reshape(3, 4), spacing=(0.5, 0.25), source="x.png",
                  meta={"format": "png", "nested": {"no": 1}})
    mask = Mask(np.eye(3, dtype=bool), (0.5, 0.25), "disc")
    ToolCache(tmp_path).put("abcd", {"img": image, "m": mask, "n": np.float64(2.5), "s": "yes", "arr": np.ones(3)})
    fresh = ToolCache(tmp_path)  # another process: nothing in memory
    refs = fresh.get("abcd")
    assert refs["n"].loaded and refs["n"].value == 2.5 and refs["s"].value == "yes"
    assert not refs["img"].loaded and not refs["m"].loaded
    loaded = refs["img"].value
    assert refs["img"].loaded
    assert np.array_equal(loaded.array, image.array) and loaded.spacing == (0.5, 0.25)
    assert loaded.source == "x.png" and loaded.meta == {"format": "png"}  # only plain values survive
    m = refs["m"].value
    assert m.array.dtype == bool and np.array_equal(m.array, mask.array) and m.label == "disc"
    assert np.array_equal(refs["arr"].value, np.ones(3))
    assert fresh.hits == 1


def test_disk_cache_survives_a_corrupt_index(tmp_path):
    cache = ToolCache(tmp_path)
    cache.put("abcd", {"value": 1})
    (tmp_path / "ab" / "abcd" / "index.json").write_text("{not json")
    assert ToolCache(tmp_path).get("abcd") is None


def test_disk_cache_writes_no_pickles(tmp_path):
    ToolCache(tmp_path).put("abcd", {"m": Mask(np.ones((2, 2), bool))})
    with np.load(tmp_path / "ab" / "abcd" / "m.npz", allow_pickle=False) as data:
        assert data["array"].dtype == bool
    assert json.loads((tmp_path / "ab" / "abcd" / "index.json").read_text())["m"]["kind"] == "mask"


# ---------------------------------------------------------------- through the runner


def _chain(runner: ToolRunner, path) -> tuple[dict[str, Ref], list]:
    async def go():
        read = get_tool("_test_reg_read")
        split = get_tool("_test_reg_split")
        frac = get_tool("_test_reg_fraction")
        img, r1 = await runner.call(read, {"path": Ref("file:" + file_digest(path), str(path))}, {"scale": 1})
        halves, r2 = await runner.call(split, {"image": img["value"]}, {"cut": 0.5})
        out, r3 = await runner.call(frac, {"mask": halves["high"]}, {})
        return {"img": img["value"], "high": halves["high"], "fraction": out["fraction"]}, [r1, r2, r3]

    return asyncio.run(go())


def test_a_repeated_chain_is_served_from_the_cache_without_loading_arrays(tmp_path):
    path = tmp_path / "img.txt"
    path.write_text("0.1 0.7 0.9 0.2")
    out, records = _chain(ToolRunner(ToolCache(tmp_path / "cache")), path)
    assert out["fraction"].value == 0.5
    assert CALLS == {"read": 1, "split": 1, "fraction": 1}
    assert [r.cached for r in records] == [False, False, False]

    again, records = _chain(ToolRunner(ToolCache(tmp_path / "cache")), path)  # a new process
    assert again["fraction"].value == 0.5
    assert CALLS == {"read": 1, "split": 1, "fraction": 1}
    assert [r.cached for r in records] == [True, True, True]
    assert not again["img"].loaded and not again["high"].loaded  # digests sufficed


def test_changed_file_content_misses(tmp_path):
    path = tmp_path / "img.txt"
    path.write_text("0.1 0.7 0.9 0.2")
    runner = ToolRunner(ToolCache(None))
    _chain(runner, path)
    path.write_text("0.9 0.7 0.9 0.2")
    out, records = _chain(runner, path)
    assert out["fraction"].value == 0.75
    assert CALLS["read"] == 2 and not records[0].cached


def test_a_version_bump_invalidates_the_cache(tmp_path):
    cache = ToolCache(tmp_path)
    spec = get_tool("_test_reg_fraction")
    mask = Ref.of(Mask(np.array([True, False])))

    async def call(s):
        return await ToolRunner(cache).call(s, {"mask": mask}, {})

    _, first = asyncio.run(call(spec))
    _, second = asyncio.run(call(spec))
    _, bumped = asyncio.run(call(dataclasses.replace(spec, version="2")))
    assert (first.cached, second.cached, bumped.cached) == (False, True, False)
    assert CALLS["fraction"] == 2


def test_uncached_tools_always_run():
    spec = dataclasses.replace(get_tool("_test_reg_fraction"), cache=False)
    mask = Ref.of(Mask(np.array([True, True])))
    runner = ToolRunner(ToolCache(None))

    async def twice():
        await runner.call(spec, {"mask": mask}, {})
        return await runner.call(spec, {"mask": mask}, {})

    _, record = asyncio.run(twice())
    assert not record.cached and CALLS["fraction"] == 2


async def test_a_tool_that_cannot_run_here_loads_no_input():
    # The glaucoma workflow's VLM indicators used to read the whole cached photograph back
    # from disk on every run just to learn that no VLM is configured.
    import dxgraph.tools.vlm  # noqa: F401  (registers vlm_ask)

    loads = []
    image = Ref("k:image", loader=lambda: loads.append(1) or Image(np.zeros((4, 4, 3), np.float32)))
    runner = ToolRunner(ToolCache(None))
    with pytest.raises(ToolError, match="no VLM configured"):
        await runner.call(get_tool("vlm_ask"), {"image": image}, {"question": "Is there a haemorrhage?"})
    assert loads == []
    assert image.value.array.shape == (4, 4, 3) and loads == [1]  # the ref itself was loadable
