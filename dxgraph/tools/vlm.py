"""Ask the configured vision-language model a yes/no question about an image.

The answer is structured (``yes | no | uncertain`` + rationale) and requested with a JSON
schema, so no free text is parsed for keywords. No VLM configured means the indicator is
``unavailable``, said plainly; it never falls back to a guess.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from dxgraph.errors import ToolError
from dxgraph.tools.data import Image, Mask
from dxgraph.tools.registry import ToolContext, tool

__all__ = ["VLMAnswer", "VLMReply", "vlm_ask"]

_SYSTEM = (
    "You are an ophthalmology and radiology image reader assisting a research pipeline. "
    "Answer the question about the image with yes, no or uncertain, and give a one-sentence "
    "rationale naming what you see. Say uncertain when the image does not show it clearly."
)


class VLMReply(BaseModel):
    answer: Literal["yes", "no", "uncertain"]
    rationale: str = Field(max_length=600)


class VLMAnswer(NamedTuple):
    answer: str
    rationale: str


def _no_vlm(ctx: ToolContext) -> str | None:
    if ctx.models.get("vlm") is None:
        return "no VLM configured: set DXGRAPH_VLM_MODEL=openai:MODEL@URL (e.g. a vLLM server with Qwen2.5-VL)"
    return None


@tool(version="1", cache=False, precheck=_no_vlm)
async def vlm_ask(image: Image, question: str, ctx: ToolContext, overlay: Mask | None = None) -> VLMAnswer:
    """Ask the vision-language model a yes/no question about an image.

    Args:
        image: the image to show (2D; for volumes the middle slice is shown).
        question: a closed question, e.g. "Is there a disc haemorrhage?".
        overlay: an optional mask drawn as a contour, to point at a region.
    """
    from dxgraph.models.base import GenerateConfig, ImagePart, system, user
    from dxgraph.tools.imaging import to_png_bytes

    if reason := _no_vlm(ctx):
        raise ToolError(reason)
    model = ctx.models["vlm"]
    if overlay is not None:
        from dxgraph.tools.overlay import render_overlay

        png = render_overlay(image, {"region": overlay})
    else:
        png = to_png_bytes(image)
    out = await model.generate(
        [system(_SYSTEM), user(question, ImagePart(data=png, mime="image/png"))],
        config=GenerateConfig(temperature=0.0, max_tokens=200),
        schema=VLMReply,
    )
    reply: VLMReply = out.parsed
    return VLMAnswer(reply.answer, reply.rationale)
