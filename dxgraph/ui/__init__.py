"""The Gradio telemedicine demo (``dxgraph ui``); see ``dxgraph.ui.app``."""

__all__: list[str] = []
