"""Learned segmenters that run when weights are configured: SAM/MedSAM and MONAI networks.

Nothing here downloads anything. Weights come from a local path named in ``dxgraph.yaml``
(``tools.sam.weights``, ``tools.monai.<network>.weights``) or the environment
(``DXGRAPH_SAM_WEIGHTS``, ``DXGRAPH_MONAI_WEIGHTS`` with ``DXGRAPH_MONAI_CONFIG``). Without
them these tools raise ``ToolError("... not configured ...")`` and the indicator is
``unavailable``: they never pretend with a fallback. Models load lazily on first use, once
per process, on ``cuda`` when torch sees a GPU and on the CPU otherwise.

**Prompts never come from ground truth.** MedAgent-Pro prompted SAM with boxes taken from
the ground-truth masks, which leaks the answer into the measurement. ``segment_sam`` takes
only an image and literal box/point coordinates: a box either comes from the workflow's
args (a person chose it) or from ``box_from_mask`` over a mask that a classical segmenter
produced in the same run. No tool reads a mask from a file, so a label has no path in.

Results depend on the configured weights, which are not part of the tool cache key, so
these tools are not cached.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dxgraph.errors import ToolError
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.registry import ToolContext, tool

__all__ = ["MonaiNetConfig", "NETWORKS", "segment_sam", "segment_monai", "box_from_mask", "clear_models"]

NETWORKS = ("unet", "basicunet", "segresnet")

_models: dict[tuple, Any] = {}
_lock = threading.Lock()


def clear_models() -> None:
    """Forget loaded models (tests, or to pick up new weights without restarting)."""
    with _lock:
        _models.clear()


def _device(preferred: str | None) -> str:
    import torch

    if preferred:
        return preferred
    return "cuda" if torch.cuda.is_available() else "cpu"


def _tools_section(ctx: ToolContext | None, name: str) -> dict[str, Any]:
    settings = ctx.settings if ctx is not None else None
    tools = getattr(settings, "tools", None) or {}
    section = tools.get(name) or {}
    if not isinstance(section, dict):
        raise ToolError(f"tools.{name} in dxgraph.yaml must be a mapping, got {type(section).__name__}")
    return section


def _cached(key: tuple, build) -> Any:
    with _lock:
        if key not in _models:
            _models[key] = build()
        return _models[key]


def _rgb_uint8(image: Image, name: str) -> np.ndarray:
    from dxgraph.tools.imaging import display_array

    if image.ndim_spatial != 2:
        raise ToolError(f"{name} works on 2D images; got a volume of shape {image.array.shape} (pick a slice first)")
    picture = display_array(image)
    return np.repeat(picture[..., None], 3, axis=-1) if picture.ndim == 2 else picture


# ---------------------------------------------------------------- SAM / MedSAM

_SAM_NOT_CONFIGURED = ("SAM is not configured: set tools.sam.weights in dxgraph.yaml or DXGRAPH_SAM_WEIGHTS "
                       "to a local SAM/MedSAM checkpoint folder")


def _load_sam(folder: Path, device: str) -> tuple[Any, Any]:
    from transformers import SamModel, SamProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model = SamModel.from_pretrained(str(folder), local_files_only=True).to(device).eval()
        processor = SamProcessor.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a configuration problem
        raise ToolError(f"SAM weights in {str(folder)!r} could not be loaded ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); give a folder saved with "
                        "save_pretrained (config.json, model weights, processor config)") from None
    return model, processor


def _check_coords(values: list[float], n: int, what: str, height: int, width: int) -> list[float]:
    if len(values) != n or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values):
        raise ToolError(f"segment_sam: {what} must be {n} finite numbers, got {values!r}")
    xs, ys = values[0::2], values[1::2]
    if any(x < 0 or x > width for x in xs) or any(y < 0 or y > height for y in ys):
        raise ToolError(f"segment_sam: {what} {values!r} lies outside the {width}x{height} image (x, y in pixels)")
    return [float(v) for v in values]


@tool(version="1", outputs=("mask",), cache=False)
def segment_sam(image: Image, box: list[float] | None = None, point: list[float] | None = None,
                ctx: ToolContext = None) -> Mask:  # type: ignore[assignment]
    """Segment the object inside a box or under a point with SAM or MedSAM.

    The prompt is given in pixels as ``box: [x0, y0, x1, y1]`` or ``point: [x, y]`` (x is
    the column). It must come from the workflow's args or from a classical localisation
    such as ``box_from_mask`` over a segmenter's own output, never from a ground-truth
    mask; this signature has no mask or file input, so no label can reach it.

    Args:
        image: a 2D image (grey or colour); it is windowed to 8-bit RGB as SAM expects.
        box: bounding box prompt ``[x0, y0, x1, y1]`` in pixels.
        point: foreground point prompt ``[x, y]`` in pixels.
    """
    import torch

    section = _tools_section(ctx, "sam")
    weights = section.get("weights") or os.environ.get("DXGRAPH_SAM_WEIGHTS")
    if not weights:
        raise ToolError(_SAM_NOT_CONFIGURED)
    folder = Path(str(weights)).expanduser()
    if not folder.is_dir():
        raise ToolError(f"SAM weights folder {str(folder)!r} does not exist; point tools.sam.weights at a "
                        "local SAM/MedSAM checkpoint folder")
    rgb = _rgb_uint8(image, "segment_sam")
    height, width = rgb.shape[:2]
    if box is None and point is None:
        raise ToolError("segment_sam needs a prompt: give box [x0, y0, x1, y1] or point [x, y] in pixels, "
                        "or bind box to box_from_mask over a classical segmentation")
    kwargs: dict[str, Any] = {}
    if box is not None:
        b = _check_coords(list(box), 4, "box", height, width)
        if b[2] <= b[0] or b[3] <= b[1]:
            raise ToolError(f"segment_sam: box {box!r} must have x1 > x0 and y1 > y0")
        kwargs["input_boxes"] = [[b]]
    if point is not None:
        kwargs["input_points"] = [[[_check_coords(list(point), 2, "point", height, width)]]]
        kwargs["input_labels"] = [[[1]]]
    device = _device(section.get("device"))
    model, processor = _cached(("sam", str(folder.resolve()), device), lambda: _load_sam(folder, device))
    inputs = processor(images=rgb, return_tensors="pt", **kwargs)
    feed = {k: v.to(device) for k, v in inputs.items() if k in ("pixel_values", "input_boxes", "input_points", "input_labels")}
    with torch.inference_mode():
        out = model(**feed, multimask_output=False)
    masks = processor.post_process_masks(out.pred_masks.cpu(), inputs["original_sizes"].cpu(),
                                         inputs["reshaped_input_sizes"].cpu())
    mask = np.asarray(masks[0][0, 0].numpy(), dtype=bool)
    return Mask(mask, image.spacing, str(section.get("label") or "SAM"))


@tool(version="1", outputs=("box",))
def box_from_mask(mask: Mask, margin: float = 0.1) -> list[float]:
    """The bounding box ``[x0, y0, x1, y1]`` of a segmenter's mask, widened by a margin, as a SAM prompt.

    This is the classical localisation that prompts SAM: the mask must be the output of a
    segmenter in the same run (no tool loads a mask from a file).

    Args:
        mask: a 2D mask produced by a segmentation step.
        margin: fraction of the box's size added on every side.
    """
    array = np.asarray(mask.array, dtype=bool)
    if array.ndim != 2:
        raise ToolError(f"box_from_mask needs a 2D mask, got shape {array.shape}")
    if not array.any():
        raise ToolError("box_from_mask: the mask is empty, so there is nothing to put a box round")
    if margin < 0:
        raise ToolError(f"box_from_mask: margin must not be negative, got {margin:g}")
    rows, cols = np.flatnonzero(array.any(1)), np.flatnonzero(array.any(0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    height, width = array.shape
    return [float(max(cols[0] - margin * w, 0)), float(max(rows[0] - margin * h, 0)),
            float(min(cols[-1] + 1 + margin * w, width)), float(min(rows[-1] + 1 + margin * h, height))]


# ---------------------------------------------------------------- MONAI networks


class MonaiNetConfig(BaseModel):
    """One MONAI network's settings (``tools.monai.<network>`` in dxgraph.yaml)."""

    model_config = ConfigDict(extra="forbid")
    weights: str
    spatial_dims: Literal[2, 3] = 3
    in_channels: int = Field(default=1, ge=1)
    out_channels: int = Field(default=2, ge=1)
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64, 128, 256])
    strides: list[int] = Field(default_factory=lambda: [2, 2, 2, 2])
    num_res_units: int = 2
    features: list[int] | None = None
    init_filters: int = 16
    roi_size: list[int] | None = None
    sw_batch_size: int = Field(default=2, ge=1)
    overlap: float = Field(default=0.25, ge=0, lt=1)
    pad_multiple: int = Field(default=32, ge=1)
    normalize: Literal["zscore", "minmax", "none"] = "zscore"
    foreground: int = Field(default=1, ge=0)
    threshold: float = 0.5
    label: str = ""
    device: str | None = None


def _monai_config(ctx: ToolContext | None, network: str) -> MonaiNetConfig:
    section = _tools_section(ctx, "monai").get(network)
    raw: dict[str, Any] = dict(section) if isinstance(section, dict) else {}
    env_config = os.environ.get("DXGRAPH_MONAI_CONFIG")
    if not raw and env_config:
        import yaml

        try:
            loaded = yaml.safe_load(Path(env_config).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ToolError(f"DXGRAPH_MONAI_CONFIG {env_config!r} could not be read ({type(exc).__name__})") from None
        raw = dict(loaded.get(network, loaded)) if isinstance(loaded, dict) else {}
    if not raw.get("weights") and os.environ.get("DXGRAPH_MONAI_WEIGHTS"):
        raw["weights"] = os.environ["DXGRAPH_MONAI_WEIGHTS"]
    if not raw.get("weights"):
        raise ToolError(f"MONAI network {network!r} is not configured: set tools.monai.{network}.weights in "
                        "dxgraph.yaml (or DXGRAPH_MONAI_WEIGHTS) to a local state_dict .pt file")
    try:
        return MonaiNetConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ToolError(f"tools.monai.{network}.{where}: {err['msg']}") from None


def _build_net(network: str, cfg: MonaiNetConfig) -> Any:
    from monai.networks import nets

    common = {"spatial_dims": cfg.spatial_dims, "in_channels": cfg.in_channels, "out_channels": cfg.out_channels}
    if network == "unet":
        return nets.UNet(**common, channels=tuple(cfg.channels), strides=tuple(cfg.strides),
                         num_res_units=cfg.num_res_units)
    if network == "basicunet":
        return nets.BasicUNet(**common, **({"features": tuple(cfg.features)} if cfg.features else {}))
    return nets.SegResNet(**common, init_filters=cfg.init_filters)


def _load_net(network: str, cfg: MonaiNetConfig, device: str) -> Any:
    import torch

    path = Path(cfg.weights).expanduser()
    if not path.is_file():
        raise ToolError(f"MONAI weights {str(path)!r} do not exist; set tools.monai.{network}.weights to a .pt file")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt or pickled-object checkpoints
        raise ToolError(f"MONAI weights {str(path)!r} are not a plain state_dict ({type(exc).__name__}); "
                        "save them with torch.save(model.state_dict(), path)") from None
    for key in ("state_dict", "model", "network"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    net = _build_net(network, cfg)
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0][:160]
        raise ToolError(f"MONAI weights {str(path)!r} do not fit the configured {network!r} ({first}); "
                        f"check tools.monai.{network} channels/strides") from None
    return net.to(device).eval()


def _network_input(image: Image, cfg: MonaiNetConfig) -> np.ndarray:
    array = np.asarray(image.array, dtype=np.float32)
    if image.is_color:
        channels = np.moveaxis(array[..., :3], -1, 0)
        if cfg.in_channels == 1:
            channels = (channels * np.array([0.299, 0.587, 0.114], np.float32)[:, None, None]).sum(0, keepdims=True)
    else:
        channels = np.repeat(array[None], cfg.in_channels, axis=0)
    if channels.shape[0] != cfg.in_channels:
        raise ToolError(f"the network takes {cfg.in_channels} channels; the image has {channels.shape[0]}")
    if cfg.normalize == "zscore":
        channels = (channels - channels.mean()) / (channels.std() + 1e-8)
    elif cfg.normalize == "minmax":
        lo, hi = float(channels.min()), float(channels.max())
        channels = (channels - lo) / (hi - lo if hi > lo else 1.0)
    return channels.astype(np.float32)


@tool(version="1", outputs=("mask",), cache=False)
def segment_monai(image: Image, network: Literal["unet", "basicunet", "segresnet"] = "unet",
                  ctx: ToolContext = None) -> Mask:  # type: ignore[assignment]
    """Segment with a MONAI network loaded from configured weights.

    2D images go through one forward pass (padded to the network's size multiple); 3D
    volumes through ``sliding_window_inference`` with the configured ``roi_size``. The
    foreground class of the argmax (or a sigmoid threshold for one output channel) is the mask.

    Args:
        image: 2D image or 3D volume matching the network's ``spatial_dims``.
        network: which configured network: ``unet``, ``basicunet`` or ``segresnet``.
    """
    import torch

    if network not in NETWORKS:
        raise ToolError(f"unknown MONAI network {network!r}; use one of {', '.join(NETWORKS)}")
    cfg = _monai_config(ctx, network)
    if image.ndim_spatial != cfg.spatial_dims:
        raise ToolError(f"MONAI {network!r} is configured for {cfg.spatial_dims}D input; "
                        f"the image is {image.ndim_spatial}D {image.array.shape}")
    device = _device(cfg.device)
    key = ("monai", network, cfg.model_dump_json(), device, os.stat(cfg.weights).st_mtime_ns
           if os.path.isfile(cfg.weights) else 0)
    net = _cached(key, lambda: _load_net(network, cfg, device))
    x = torch.from_numpy(_network_input(image, cfg))[None].to(device)
    with torch.inference_mode():
        if cfg.spatial_dims == 3:
            from monai.inferers import sliding_window_inference

            roi = tuple(cfg.roi_size or [96, 96, 96])
            if len(roi) != 3:
                raise ToolError(f"tools.monai.{network}.roi_size must have 3 numbers, got {list(roi)}")
            logits = sliding_window_inference(x, roi, cfg.sw_batch_size, net, overlap=cfg.overlap, mode="gaussian")
        else:
            h, w = x.shape[-2:]
            m = cfg.pad_multiple
            padded = torch.nn.functional.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate")
            logits = net(padded)[..., :h, :w]
    if cfg.out_channels == 1:
        mask = torch.sigmoid(logits[0, 0]) > cfg.threshold
    else:
        if cfg.foreground >= cfg.out_channels:
            raise ToolError(f"tools.monai.{network}.foreground {cfg.foreground} is not one of the "
                            f"{cfg.out_channels} output classes")
        mask = logits[0].argmax(0) == cfg.foreground
    return Mask(mask.cpu().numpy(), image.spacing, cfg.label or f"MONAI {network}")
