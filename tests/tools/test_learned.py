"""Learned segmenters, driven through their real code paths with tiny randomly initialised models.

The models are built from small configs and saved to tmp_path, then loaded back through the
configured weights path exactly as a real SAM/MedSAM checkpoint or MONAI state_dict would be.
Their masks are meaningless (random weights); the tests pin shapes, plumbing and errors, and
compare against a direct forward pass where the answer is known.
"""

from __future__ import annotations

import asyncio
import typing

import numpy as np
import pytest
import torch

from dxgraph.config import Settings
from dxgraph.errors import ToolError
from dxgraph.tools import learned
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.learned import box_from_mask, segment_monai, segment_sam
from dxgraph.tools.cache import Ref
from dxgraph.tools.registry import FilePath, ToolContext, get_tool, registry
from dxgraph.tools.runner import ToolRunner


@pytest.fixture(autouse=True)
def _fresh_models(monkeypatch):
    monkeypatch.delenv("DXGRAPH_SAM_WEIGHTS", raising=False)
    monkeypatch.delenv("DXGRAPH_MONAI_WEIGHTS", raising=False)
    monkeypatch.delenv("DXGRAPH_MONAI_CONFIG", raising=False)
    learned.clear_models()
    yield
    learned.clear_models()


def _ctx(**tools) -> ToolContext:
    return ToolContext(settings=Settings(tools=tools))


# ---------------------------------------------------------------- SAM


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory):
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    torch.manual_seed(0)
    config = SamConfig(
        vision_config=dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=16, window_size=2, global_attn_indexes=[1],
                           num_pos_feats=16, mlp_dim=64),
        prompt_encoder_config=dict(hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
    )
    folder = tmp_path_factory.mktemp("tiny_sam")
    SamModel(config).save_pretrained(folder)
    processor = SamProcessor(image_processor=SamImageProcessor(
        size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
        mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16}))
    processor.save_pretrained(folder)
    return folder


def _photo(h=50, w=80) -> Image:
    rng = np.random.default_rng(1)
    return Image(rng.integers(0, 255, (h, w, 3)).astype(np.float32), spacing=(0.5, 0.5))


def test_sam_not_configured_says_so():
    with pytest.raises(ToolError) as err:
        segment_sam(_photo(), box=[1, 1, 10, 10], ctx=_ctx())
    assert str(err.value) == ("SAM is not configured: set tools.sam.weights in dxgraph.yaml or DXGRAPH_SAM_WEIGHTS "
                              "to a local SAM/MedSAM checkpoint folder")


def test_sam_missing_folder(tmp_path):
    with pytest.raises(ToolError, match="does not exist"):
        segment_sam(_photo(), box=[1, 1, 10, 10], ctx=_ctx(sam={"weights": str(tmp_path / "none")}))


def test_sam_box_prompt_gives_a_mask_on_the_image_grid(sam_dir):
    image = _photo(50, 80)
    mask = segment_sam(image, box=[10, 5, 60, 40], ctx=_ctx(sam={"weights": str(sam_dir)}))
    assert isinstance(mask, Mask)
    assert mask.array.shape == (50, 80) and mask.array.dtype == bool
    assert mask.spacing == (0.5, 0.5)


def test_sam_point_prompt_on_a_grey_image_from_the_environment(sam_dir, monkeypatch):
    monkeypatch.setenv("DXGRAPH_SAM_WEIGHTS", str(sam_dir))
    grey = Image(np.random.default_rng(2).normal(0, 1000, (37, 29)).astype(np.float32))
    mask = segment_sam(grey, point=[10, 20], ctx=ToolContext())
    assert mask.array.shape == (37, 29)


def test_sam_loads_its_model_once_per_process(sam_dir):
    ctx = _ctx(sam={"weights": str(sam_dir)})
    segment_sam(_photo(), box=[10, 5, 60, 40], ctx=ctx)
    first = dict(learned._models)
    a = segment_sam(_photo(), box=[10, 5, 60, 40], ctx=ctx)
    b = segment_sam(_photo(), box=[10, 5, 60, 40], ctx=ctx)
    assert len(learned._models) == 1 and learned._models == first
    assert np.array_equal(a.array, b.array)  # deterministic in eval mode


@pytest.mark.parametrize("kwargs, words", [
    ({}, "needs a prompt"),
    ({"box": [10, 5, 500, 40]}, "outside"),
    ({"box": [60, 5, 10, 40]}, "x1 > x0"),
    ({"box": [1, 2, 3]}, "4 finite numbers"),
    ({"point": [-1, 3]}, "outside"),
])
def test_sam_bad_prompts(sam_dir, kwargs, words):
    with pytest.raises(ToolError, match=words):
        segment_sam(_photo(), ctx=_ctx(sam={"weights": str(sam_dir)}), **kwargs)


def test_sam_refuses_a_volume(sam_dir):
    vol = Image(np.zeros((4, 32, 32), np.float32), (1.0, 1.0, 1.0), meta={"layout": "volume"})
    with pytest.raises(ToolError, match="2D images"):
        segment_sam(vol, box=[1, 1, 10, 10], ctx=_ctx(sam={"weights": str(sam_dir)}))


def test_sam_runs_through_the_runner_with_injected_settings(sam_dir):
    runner = ToolRunner(context=_ctx(sam={"weights": str(sam_dir)}), strict=True)
    image = _photo()
    refs, record = asyncio.run(runner.call(get_tool("segment_sam"), {"image": Ref.of(image)}, {"box": [10, 5, 60, 40]}))
    assert refs["mask"].value.array.shape == image.array.shape[:2]
    assert not record.cached


def test_sam_has_no_path_by_which_a_label_can_reach_it():
    spec = get_tool("segment_sam")
    assert set(spec.inputs) == {"image"}
    hints = typing.get_type_hints(spec.fn)
    for name, param in spec.params.items():
        assert hints[name] not in (Mask, FilePath), name
    assert spec.params["box"].kind == "arg" and spec.params["point"].kind == "arg"


def test_no_tool_turns_a_file_into_a_mask():
    # Ground-truth masks live in files; since no tool reads a mask from a file, none can
    # reach box_from_mask -> segment_sam or any measurement.
    for spec in registry().values():
        if not any(p.annotation is FilePath for p in spec.inputs.values()):
            continue
        ret = typing.get_type_hints(spec.fn).get("return")
        fields = typing.get_type_hints(ret).values() if isinstance(ret, type) and hasattr(ret, "_fields") else [ret]
        assert Mask not in fields, spec.name


def test_box_from_mask_known_box():
    a = np.zeros((100, 200), bool)
    a[20:40, 50:150] = True
    assert box_from_mask(Mask(a), margin=0.0) == [50.0, 20.0, 150.0, 40.0]
    assert box_from_mask(Mask(a), margin=0.1) == [40.0, 18.0, 160.0, 42.0]
    with pytest.raises(ToolError, match="empty"):
        box_from_mask(Mask(np.zeros((5, 5), bool)))


# ---------------------------------------------------------------- MONAI


def _unet(spatial_dims: int, in_channels: int = 1):
    from monai.networks.nets import UNet

    torch.manual_seed(3)
    return UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=2, channels=(4, 8), strides=(2,),
                num_res_units=1).eval()


def _config(path, spatial_dims: int, **extra) -> dict:
    return {"weights": str(path), "spatial_dims": spatial_dims, "channels": [4, 8], "strides": [2],
            "num_res_units": 1, "normalize": "none", **extra}


def test_monai_not_configured_says_so():
    with pytest.raises(ToolError, match="'unet' is not configured"):
        segment_monai(Image(np.zeros((8, 8), np.float32)), ctx=_ctx())


def test_monai_2d_matches_a_direct_forward_pass(tmp_path):
    net = _unet(2)
    torch.save(net.state_dict(), tmp_path / "unet2d.pt")
    image = Image(np.random.default_rng(4).normal(size=(32, 64)).astype(np.float32), spacing=(0.7, 0.7))
    mask = segment_monai(image, ctx=_ctx(monai={"unet": _config(tmp_path / "unet2d.pt", 2)}))
    with torch.no_grad():
        expected = net(torch.from_numpy(image.array)[None, None])[0].argmax(0).numpy() == 1
    assert mask.array.shape == (32, 64) and mask.spacing == (0.7, 0.7)
    assert np.array_equal(mask.array, expected)
    assert 0 < mask.array.mean() < 1  # random weights still split the image: the comparison is not vacuous


def test_monai_2d_odd_size_and_colour_input(tmp_path):
    torch.save(_unet(2, in_channels=3).state_dict(), tmp_path / "rgb.pt")
    image = Image(np.random.default_rng(5).uniform(0, 255, (30, 45, 3)).astype(np.float32))
    cfg = _config(tmp_path / "rgb.pt", 2, in_channels=3, normalize="minmax")
    assert segment_monai(image, ctx=_ctx(monai={"unet": cfg})).array.shape == (30, 45)


def test_monai_3d_sliding_window_matches_a_direct_pass_when_one_window_covers_it(tmp_path):
    net = _unet(3)
    torch.save({"state_dict": net.state_dict()}, tmp_path / "unet3d.pt")  # a wrapped checkpoint
    vol = np.random.default_rng(6).normal(size=(16, 16, 16)).astype(np.float32)
    image = Image(vol, (2.0, 1.0, 1.0), meta={"layout": "volume"})
    mask = segment_monai(image, ctx=_ctx(monai={"unet": _config(tmp_path / "unet3d.pt", 3, roi_size=[16, 16, 16])}))
    with torch.no_grad():
        expected = net(torch.from_numpy(vol)[None, None])[0].argmax(0).numpy() == 1
    assert np.array_equal(mask.array, expected)
    tiled = segment_monai(image, ctx=_ctx(monai={"unet": _config(tmp_path / "unet3d.pt", 3, roi_size=[8, 8, 8])}))
    assert tiled.array.shape == (16, 16, 16) and tiled.spacing == (2.0, 1.0, 1.0)


def test_monai_from_environment(tmp_path, monkeypatch):
    torch.save(_unet(2).state_dict(), tmp_path / "w.pt")
    (tmp_path / "monai.yaml").write_text("unet:\n  spatial_dims: 2\n  channels: [4, 8]\n  strides: [2]\n"
                                         "  num_res_units: 1\n")
    monkeypatch.setenv("DXGRAPH_MONAI_WEIGHTS", str(tmp_path / "w.pt"))
    monkeypatch.setenv("DXGRAPH_MONAI_CONFIG", str(tmp_path / "monai.yaml"))
    assert segment_monai(Image(np.ones((16, 16), np.float32)), ctx=ToolContext()).array.shape == (16, 16)


def test_monai_weights_that_do_not_fit_the_config(tmp_path):
    torch.save(_unet(2).state_dict(), tmp_path / "w.pt")
    cfg = _config(tmp_path / "w.pt", 2) | {"channels": [8, 16]}
    with pytest.raises(ToolError, match="do not fit"):
        segment_monai(Image(np.ones((16, 16), np.float32)), ctx=_ctx(monai={"unet": cfg}))


class _NotWeights:
    pass


def test_monai_refuses_pickled_objects(tmp_path):
    torch.save(_NotWeights(), tmp_path / "evil.pt")
    with pytest.raises(ToolError, match="not a plain state_dict"):
        segment_monai(Image(np.ones((16, 16), np.float32)), ctx=_ctx(monai={"unet": _config(tmp_path / "evil.pt", 2)}))


def test_monai_dimensionality_and_config_errors(tmp_path):
    torch.save(_unet(2).state_dict(), tmp_path / "w.pt")
    vol = Image(np.ones((8, 8, 8), np.float32), (1.0, 1.0, 1.0), meta={"layout": "volume"})
    with pytest.raises(ToolError, match="configured for 2D"):
        segment_monai(vol, ctx=_ctx(monai={"unet": _config(tmp_path / "w.pt", 2)}))
    with pytest.raises(ToolError, match="tools.monai.unet.chanels"):
        segment_monai(vol, ctx=_ctx(monai={"unet": _config(tmp_path / "w.pt", 2) | {"chanels": [1]}}))
    with pytest.raises(ToolError, match="do not exist"):
        segment_monai(vol, ctx=_ctx(monai={"unet": _config(tmp_path / "nope.pt", 3)}))
