"""Kraken Futures v1 requests and acks (sheet ``kraken-futures.md`` section 2).

One request per feed listing the products; one ``subscribed`` ack per
request. Failures come as ``error`` or ``alert`` events (no request id), so
they are reported, not attributed. A book resync is unsubscribe + subscribe
of that product's book (a fresh ``book_snapshot`` follows). The keep-alive
is a WebSocket protocol Ping, at least once a minute.
"""

from __future__ import annotations

from collections.abc import Sequence

from ssmd.connectors.base import ControlEvent, Session, chunks, dumps, loads
from ssmd.connectors.kraken_futures.config import KrakenFuturesConfig

__all__ = ["KrakenFuturesSession"]

_FAILURES = ("error", "alert", "subscribed_failed", "unsubscribed_failed")


class KrakenFuturesSession(Session[KrakenFuturesConfig]):
    """One Kraken Futures connection."""

    def _requests(self, event: str, feed: str, products: Sequence[str]) -> list[bytes]:
        return [
            dumps({"event": event, "feed": feed, "product_ids": list(part)})
            for part in chunks(products, self.config.products_per_request)
        ]

    def on_open(self) -> list[bytes]:
        if self.config.heartbeat:
            return [dumps({"event": "subscribe", "feed": "heartbeat"})]
        return []

    def subscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return [m for f in self.channels for m in self._requests("subscribe", f, instruments)]

    def unsubscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return [m for f in self.channels for m in self._requests("unsubscribe", f, instruments)]

    def resync(self, instruments: Sequence[str]) -> list[bytes]:
        if "book" not in self.channels:
            return []
        return self._requests("unsubscribe", "book", instruments) + self._requests(
            "subscribe", "book", instruments
        )

    def on_control(self, kind: str, raw: bytes) -> tuple[list[ControlEvent], list[bytes]]:
        if kind == "heartbeat":
            return [], []
        msg = loads(raw)
        if not isinstance(msg, dict):
            return [ControlEvent("ignored", message=kind)], []
        ids = msg.get("product_ids")
        products = tuple(str(p) for p in ids) if isinstance(ids, list) else ()
        feed = msg.get("feed") if isinstance(msg.get("feed"), str) else None
        if kind in _FAILURES:
            return [ControlEvent("error", products, feed, f"{kind}: {msg.get('message', '')}")], []
        if kind in ("subscribed", "unsubscribed"):
            return [ControlEvent(kind, products, feed)], []
        if kind == "info":
            return [ControlEvent("info", message=f"version {msg.get('version')}")], []
        return [ControlEvent("ignored", message=kind)], []
