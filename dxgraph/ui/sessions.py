"""A visitor's consultation as a typed record, and where the server keeps it between requests.

The browser holds only an unguessable token (``gr.BrowserState``, encrypted by Gradio); the
consultation itself (its transcript, the server paths of its images, the doctor's
conclusion) stays on the server in :class:`SessionStore`. A reload finds the consultation
again through the token; another browser has another token and never sees it; and nothing
a browser sends can point the doctor's tools at a file of the server's choosing.

>>> store = SessionStore(max_sessions=2)
>>> token = store.new_token()
>>> store.put(token, ConsultSession(id="consult-1", complaint="a rash"))
>>> store.get(token).complaint
'a rash'
>>> store.get("someone-else's") is None
True
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict

from pydantic import BaseModel, ConfigDict, Field

from dxgraph.types import Diagnosis, FinalDiagnosis, ImageRef, Turn

__all__ = ["ConsultSession", "SessionStore"]


class ConsultSession(BaseModel):
    """One visitor's consultation: what the doctor has been told and what it concluded."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list, description="server paths of the kept uploads")
    complaint: str = ""
    workflow: str | None = None
    dx: Diagnosis | None = None
    final: FinalDiagnosis | None = None
    evidence_for: int = Field(0, description="how many images the tools have already seen")

    @property
    def strategy(self) -> str:
        if not self.images:
            return "dialogue"
        return "dialogue+image+tools" if self.workflow else "dialogue+image"

    @property
    def questions(self) -> int:
        return sum(1 for t in self.turns if t.role == "doctor")

    @property
    def patient_words(self) -> list[str]:
        return [t.text for t in self.turns if t.role == "patient"]

    def view(self):
        from dxgraph.agents.doctor import CaseView

        return CaseView(case_id=self.id or "consult", strategy=self.strategy, chief_complaint=self.complaint,
                        images=[ImageRef(path=p) for p in self.images], workflow=self.workflow)

    def add(self, turn: Turn) -> None:
        self.turns.append(turn.model_copy(update={"index": len(self.turns)}))


class SessionStore:
    """Consultations by browser token, in memory, bounded: the least recently used beyond
    ``max_sessions`` and any idle for ``ttl_s`` are dropped (their transcripts stay in the store)."""

    def __init__(self, max_sessions: int = 500, ttl_s: float = 12 * 3600):
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._items: OrderedDict[str, tuple[float, ConsultSession]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(24)

    def get(self, token: str | None) -> ConsultSession | None:
        """A copy of the token's consultation (edits take effect only through :meth:`put`)."""
        if not token:
            return None
        with self._lock:
            item = self._items.get(token)
            if item is None:
                return None
            if time.monotonic() - item[0] > self.ttl_s:
                del self._items[token]
                return None
            self._items.move_to_end(token)
            return item[1].model_copy(deep=True)

    def put(self, token: str, session: ConsultSession) -> None:
        with self._lock:
            self._items[token] = (time.monotonic(), session.model_copy(deep=True))
            self._items.move_to_end(token)
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._items.pop(token or "", None)

    def __len__(self) -> int:
        return len(self._items)
