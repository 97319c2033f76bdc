"""What the page needs from the rest of dxgraph, in one place: no diagnostic logic here.

The page's handlers run in Gradio's event loop. Agents, tools and model clients run in one
background event loop of their own (``AgentLoop``): a workflow's segmentation or a rule
doctor's embedding work never stalls the page for other visitors, and every model
client's connection pool and concurrency limiter live in the loop that created them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Coroutine
from concurrent.futures import Future
from functools import cached_property
from pathlib import Path
from typing import Any

from dxgraph.config import ROLES, Settings, load_settings, role_spec
from dxgraph.bench.agents import AgentFactory
from dxgraph.errors import InputError
from dxgraph.models.roles import ModelPool
from dxgraph.ui.sessions import SessionStore

__all__ = [
    "AgentLoop",
    "Services",
    "UPLOAD_SUFFIXES",
    "IMAGE_SUFFIXES",
    "MAX_UPLOAD_MB",
    "validate_upload",
    "role_rows",
    "roles_markdown",
    "new_id",
]

log = logging.getLogger("dxgraph.ui")

MAX_UPLOAD_MB = 20
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".dcm", ".nii", ".nii.gz")
UPLOAD_SUFFIXES: tuple[str, ...] = (*IMAGE_SUFFIXES, ".yaml", ".yml")

_ROLE_HELP = {
    "planner": "drafts plans (built-in workflows compile without it)",
    "doctor": "asks the questions and concludes",
    "patient": "plays the patient in simulations",
    "judge": "scores simulated consultations",
    "vlm": "answers questions about images",
}


def new_id(prefix: str) -> str:
    """A fresh, unguessable id (one per consultation or simulation)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _suffix(path: str | Path) -> str:
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def _looks_like(path: Path, suffix: str) -> bool:
    """Check the first bytes, so a renamed file is caught before a tool chokes on it."""
    with path.open("rb") as fh:
        head = fh.read(352)
    if suffix == ".png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if suffix in (".jpg", ".jpeg"):
        return head.startswith(b"\xff\xd8\xff")
    if suffix == ".dcm":
        # Part-10 files carry "DICM" at 128; some old files have no preamble but start with a group 0008 tag.
        return head[128:132] == b"DICM" or head[:2] in (b"\x08\x00", b"\x02\x00")
    if suffix == ".nii.gz":
        return head.startswith(b"\x1f\x8b")
    if suffix == ".nii":
        return len(head) >= 348 and (head[:4] in (b"\x5c\x01\x00\x00", b"\x00\x00\x01\x5c")
                                     or head[344:348] in (b"n+1\x00", b"ni1\x00"))
    if suffix in (".yaml", ".yml"):
        return b"\x00" not in head
    return False


def validate_upload(path: str | Path | None, *, allowed: tuple[str, ...] = UPLOAD_SUFFIXES,
                    max_mb: float = MAX_UPLOAD_MB) -> Path:
    """Check an uploaded file's type, size and first bytes; return its path.

    Raises:
        InputError: one line a visitor can act on (which types, what size).
    """
    if not path:
        raise InputError("no file was uploaded")
    p = Path(path)
    name = p.name
    suffix = _suffix(p)
    if suffix not in allowed:
        kinds = ", ".join(s.lstrip(".") for s in allowed)
        raise InputError(f"{name!r} is not an accepted file type; upload one of: {kinds}")
    if not p.is_file():
        raise InputError(f"the upload {name!r} did not arrive; please attach it again")
    size_mb = p.stat().st_size / 1e6
    if size_mb > max_mb:
        raise InputError(f"{name!r} is {size_mb:.1f} MB; files up to {max_mb:g} MB are accepted")
    if p.stat().st_size == 0:
        raise InputError(f"{name!r} is empty")
    if not _looks_like(p, suffix):
        raise InputError(f"{name!r} does not look like a {suffix.lstrip('.').upper()} file; is the extension right?")
    return p


def role_rows(settings: Settings) -> list[tuple[str, str, str]]:
    """``(role, what serves it, what the role does)`` for the roles panel."""
    rows = []
    for role in ROLES:
        spec = role_spec(settings, role)
        if spec == "rules":
            served = "offline rule agent"
        elif spec is None:
            served = f"unavailable (set DXGRAPH_{role.upper()}_MODEL)"
        else:
            served = spec
        rows.append((role, served, _ROLE_HELP[role]))
    return rows


def roles_markdown(settings: Settings) -> str:
    """The 'which model serves each role' panel as a Markdown table."""
    rows = role_rows(settings)
    offline = all(r[1].startswith(("offline", "unavailable")) for r in rows)
    head = ("All roles run offline: rule agents, no language model." if offline
            else "Models per role (from dxgraph.yaml and DXGRAPH_<ROLE>_MODEL).")
    lines = [head, "", "| role | served by | does |", "|---|---|---|"]
    lines += [f"| {role} | `{served}` | {does} |" for role, served, does in rows]
    return "\n".join(lines)


class AgentLoop:
    """One background event loop that runs every agent, tool and model coroutine."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dxgraph-ui-agents", daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def submit(self, coro: Coroutine) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def run(self, coro: Coroutine) -> Any:
        """Await ``coro`` on the agent loop from another loop (the page's)."""
        return await asyncio.wrap_future(self.submit(coro))

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


class Services:
    """Settings, store, agents and data sets for the page, created once per app.

    Args:
        settings: dxgraph settings (default: ``load_settings()``).
        store: a Store, or None to open the configured one.
        models: ready-made chat models by role (tests pass ScriptedModels); other roles
            come from the settings.
    """

    def __init__(self, settings: Settings | None = None, store=None, models: dict[str, Any] | None = None,
                 *, db_url: str | None = None):
        self.settings = settings or load_settings()
        self._store = store
        self.db_url = getattr(store, "url", None) or db_url or self.settings.db_url
        self.pool = ModelPool(self.settings, by_role=models)
        self.factory = AgentFactory(self.pool, cases="bundled")
        self.agents = AgentLoop()
        self.upload_dir = self.settings.home / "ui" / "uploads"
        self.overlay_root = self.settings.home / "ui" / "overlays"
        # Consultations by browser token (the browser keeps only the token): a reload finds its own.
        self.sessions = SessionStore()

    @property
    def store(self):
        if self._store is None:
            from dxgraph.store import Store

            self._store = Store(self.db_url)
        return self._store

    @property
    def store_label(self) -> str:
        """The store's URL as the page shows it: the password hidden."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.db_url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is refused on first use
            return "(unparseable store URL)"

    def spec(self, role: str) -> str | None:
        return role_spec(self.settings, role)

    def model(self, role: str):
        """The chat model for a role, or None where the role is served by rules or nothing."""
        return self.pool.for_role(role)

    # ---------------------------------------------------------------- data
    @cached_property
    def workflows(self) -> dict[str, Any]:
        """The built-in workflows that load; one that does not is logged and left out, so
        the rest of the page still works."""
        from dxgraph.errors import DxGraphError
        from dxgraph.workflows.loader import builtin_dir, load_workflow

        found: dict[str, Any] = {}
        self.workflow_problems: list[str] = []
        for path in sorted(builtin_dir().glob("*.yaml")):
            try:
                wf = load_workflow(path)
            except DxGraphError as exc:
                self.workflow_problems.append(str(exc).splitlines()[0])
                log.warning("built-in workflow %s left out: %s", path.name, exc)
                continue
            found[wf.id] = wf
        return dict(sorted(found.items()))

    @cached_property
    def cases(self) -> dict[str, Any]:
        """Test-split cases for the simulator, text vignettes then the imaging cases (the rule
        doctor learned from the train split)."""
        from dxgraph.simulator.cases import load_cases

        return {c.id: c for c in load_cases("bundled", split="test") + load_cases("bundled-imaging", split="test")}

    @cached_property
    def personas(self) -> dict[str, Any]:
        from dxgraph.simulator.personas import load_personas

        loaded = load_personas()
        return dict(loaded) if isinstance(loaded, dict) else {p.name: p for p in loaded}

    def samples(self) -> list[str]:
        """The shipped sample images, as ``sample:NAME``."""
        from dxgraph.simulator.cases import SAMPLE_IMAGES

        return [f"sample:{n}" for n in SAMPLE_IMAGES]

    # -------------------------------------------------------------- agents
    def doctor(self, strategy: str, tools=None):
        """The configured doctor for a strategy: an LLM doctor, or the offline rule doctor."""
        from dxgraph.agents.doctor import ToolBox

        return self.factory.doctor(None, strategy, tools=tools or ToolBox(vlm=self.model("vlm")))

    def patient(self):
        return self.factory.patient(None)

    def judge(self):
        return self.factory.judge(None)

    def warm_up(self) -> Future:
        """Build the rule doctor's knowledge base in the background, before the first visitor."""

        async def _warm() -> None:
            if self.model("doctor") is None:
                await asyncio.to_thread(self.doctor, "dialogue")

        return self.agents.submit(_warm())

    def close(self) -> None:
        self.agents.close()
