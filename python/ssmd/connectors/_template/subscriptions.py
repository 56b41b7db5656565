"""Template requests and acks (phase 2: public channels).

One :class:`TemplateSession` per connection holds request ids and whatever
the venue returns for subscriptions (server ids). Return bytes ready to send;
never send or touch sockets here.
"""

from __future__ import annotations

from collections.abc import Sequence

from ssmd.connectors._template.config import TemplateConfig
from ssmd.connectors.base import ControlEvent, Session, chunks, dumps, loads

__all__ = ["TemplateSession"]


class TemplateSession(Session[TemplateConfig]):
    """Requests as ``{"op":…,"channel":…,"ids":[…],"id":n}`` (invented: use the sheet's)."""

    def _requests(self, op: str, instruments: Sequence[str]) -> list[bytes]:
        return [
            dumps({"op": op, "channel": ch, "ids": list(part), "id": self.next_id()})
            for ch in self.channels
            for part in chunks(instruments, 100)
        ]

    def subscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return self._requests("subscribe", instruments)

    def unsubscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return self._requests("unsubscribe", instruments)

    def on_control(self, kind: str, raw: bytes) -> tuple[list[ControlEvent], list[bytes]]:
        msg = loads(raw)
        if not isinstance(msg, dict):
            return [ControlEvent("ignored", message=kind)], []
        if kind == "error":
            return [ControlEvent("error", message=str(msg.get("message", "")))], []
        return [ControlEvent("info", message=kind)], []
