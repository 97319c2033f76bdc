"""The tools a ``dialogue+image+tools`` doctor calls, and how their evidence reads in a prompt."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, Field

from dxgraph.agents.doctor_view import CaseView
from dxgraph.models.base import ChatModel, GenerateConfig, ImagePart, system, user
from dxgraph.simulator import labels as label_table
from dxgraph.types import ImageRef, Turn

__all__ = ["ToolBox", "image_part", "workflow_label"]


def workflow_label(text: str) -> str | None:
    """The imaging label a workflow evidence turn concludes (``_summarise_workflow``'s outcome),
    or None when it is indeterminate, unavailable or names no imaging label."""
    head = text.split(";", 1)[0]
    if not head.startswith("workflow ") or ": outcome " not in head:
        return None
    found = [lab for lab in label_table.find_labels(head.split(": outcome ", 1)[1]) if label_table.is_imaging_label(lab)]
    return found[0] if found else None


def _summarise_workflow(dx) -> str:
    from dxgraph.agents.assessor import describe_score

    parts = [f"workflow {dx.workflow!r}: outcome {dx.outcome}"]
    if described := describe_score(dx):
        parts.append(described)
    for ind in dx.indicators:
        if ind.status == "ok":
            unit = f" {ind.unit}" if ind.unit else ""
            value = f"{ind.value:.3f}" if isinstance(ind.value, float) else ind.value  # as the evidence table shows it
            parts.append(f"{ind.id} = {value}{unit} ({ind.finding}; abnormal if {ind.rule})")
        else:
            parts.append(f"{ind.id}: unavailable ({ind.error})")
    return "; ".join(parts)


class _Findings(BaseModel):
    findings: str = Field(max_length=800)


class ToolBox:
    """The tools a ``dialogue+image+tools`` doctor may call.

    The diagnostic workflow runs when the case names one and has images; otherwise the VLM
    is asked to describe the photo. A tool that fails becomes evidence saying so: the
    consultation goes on.

    Args:
        vlm: a vision-language ChatModel, or None (then the VLM tool is unavailable).
        workflow_runner: ``async (workflow_id, image_paths) -> Diagnosis``; default
            ``dxgraph.agents.diagnose.run_workflow``.
    """

    def __init__(self, vlm: ChatModel | None = None, workflow_runner=None):
        self.vlm = vlm
        self._runner = workflow_runner

    async def _run_workflow(self, workflow: str, paths: list[str]):
        if self._runner is not None:
            return await self._runner(workflow, paths)
        from dxgraph.agents.diagnose import run_workflow

        return await run_workflow(workflow, paths)

    async def evidence(self, view: CaseView) -> list[Turn]:
        """Run the tools for a case view; one ``tool`` turn per tool."""
        from dxgraph.errors import DxGraphError

        start = time.perf_counter()
        paths = [img.path for img in view.images]
        if view.workflow and paths:
            name = f"workflow:{view.workflow}"
            try:
                text = _summarise_workflow(await self._run_workflow(view.workflow, paths))
            except DxGraphError as exc:
                text = f"unavailable: {exc}"
        else:
            name = "vlm"
            text, usage = await self._ask_vlm(view)
        ms = (time.perf_counter() - start) * 1000
        return [Turn(index=0, role="tool", tool=name, text=text, latency_ms=ms)]

    async def _ask_vlm(self, view: CaseView) -> tuple[str, tuple[int, int]]:
        from dxgraph.errors import DxGraphError

        if self.vlm is None:
            return "unavailable: no VLM configured (set DXGRAPH_VLM_MODEL)", (0, 0)
        parts = [p for p in (image_part(i) for i in view.images) if p is not None]
        if not parts:
            return "unavailable: the case has no readable image", (0, 0)
        try:
            out = await self.vlm.generate(
                [
                    system("You describe clinical photographs for a doctor: lesion type, "
                           "colour, distribution, borders, surface. Do not name a diagnosis."),
                    user("Describe the visible findings in this photo.", *parts),
                ],
                config=GenerateConfig(temperature=0.0, max_tokens=250),
                schema=_Findings,
            )
        except DxGraphError as exc:
            return f"unavailable: {exc}", (0, 0)
        return out.parsed.findings, (out.usage.input_tokens, out.usage.output_tokens)


def image_part(ref: ImageRef) -> ImagePart | None:
    """The image file as an ImagePart; None when it cannot be read (the doctor goes on)."""
    path = ref.path
    try:
        if path.startswith("sample:"):
            from dxgraph.tools.imaging import resolve_image_path

            path = str(resolve_image_path(path))
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg"):
            return ImagePart(data=p.read_bytes(), mime="image/png" if suffix == ".png" else "image/jpeg")
        from dxgraph.tools.imaging import load_image, to_png_bytes

        return ImagePart(data=to_png_bytes(load_image(path)), mime="image/png")
    except Exception:  # noqa: BLE001 - an unreadable photo is not fatal to a consultation
        return None
