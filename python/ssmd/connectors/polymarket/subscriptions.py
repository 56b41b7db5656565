"""Polymarket market channel requests (sheet ``polymarket.md`` section 2).

The first request on a connection names its tokens
(``{"assets_ids":[…],"type":"market","custom_feature_enabled":true}``);
later changes use ``"operation":"subscribe"|"unsubscribe"``. The venue sends
no acks: the first data are ``book`` snapshots. The keep-alive is the text
``PING``, answered by the text ``PONG``. A resync (a fresh ``book``) is
unsubscribe + subscribe of the token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ssmd.connectors.base import ControlEvent, Session, chunks, dumps
from ssmd.connectors.polymarket.config import PolymarketConfig

__all__ = ["CUSTOM_FEATURES", "PolymarketSession"]

#: event types that need ``custom_feature_enabled``
CUSTOM_FEATURES = ("best_bid_ask", "new_market", "market_resolved")


class PolymarketSession(Session[PolymarketConfig]):
    """One Polymarket connection."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._initial_sent = False
        self._custom = any(c in CUSTOM_FEATURES for c in self.channels)

    def subscribe(self, instruments: Sequence[str]) -> list[bytes]:
        out = []
        for part in chunks(instruments, self.config.max_per_connection):
            msg: dict[str, Any] = {"assets_ids": list(part)}
            if self._initial_sent:
                msg["operation"] = "subscribe"
            else:
                msg["type"] = "market"
                self._initial_sent = True
            if self._custom:
                msg["custom_feature_enabled"] = True
            out.append(dumps(msg))
        return out

    def unsubscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return [
            dumps({"assets_ids": list(part), "operation": "unsubscribe"})
            for part in chunks(instruments, self.config.max_per_connection)
        ]

    def resync(self, instruments: Sequence[str]) -> list[bytes]:
        return self.unsubscribe(instruments) + self.subscribe(instruments)

    def ping(self) -> bytes:
        return b"PING"

    def on_control(self, kind: str, raw: bytes) -> tuple[list[ControlEvent], list[bytes]]:
        if kind == "pong":
            return [ControlEvent("pong")], []
        return [ControlEvent("ignored", message=kind)], []
