"""Kraken spot v2 requests and acks (sheet ``kraken.md`` section 2).

One request per channel with a list of symbols; the venue acks every symbol
separately. A book resync is unsubscribe + subscribe of that symbol's book
(a fresh snapshot follows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ssmd.connectors.base import ControlEvent, Session, chunks, dumps, loads
from ssmd.connectors.kraken.config import KrakenConfig

__all__ = ["KrakenSession"]


class KrakenSession(Session[KrakenConfig]):
    """One Kraken spot connection."""

    def _requests(self, method: str, channel: str, symbols: Sequence[str]) -> list[bytes]:
        out = []
        for part in chunks(symbols, self.config.symbols_per_request):
            params: dict[str, Any] = {"channel": channel, "symbol": list(part)}
            if channel == "book":
                params["depth"] = self.config.book_depth
            if method == "subscribe" and channel == "ticker":
                params["event_trigger"] = self.config.event_trigger
            out.append(dumps({"method": method, "params": params, "req_id": self.next_id()}))
        return out

    def subscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return [m for ch in self.channels for m in self._requests("subscribe", ch, instruments)]

    def unsubscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return [m for ch in self.channels for m in self._requests("unsubscribe", ch, instruments)]

    def resync(self, instruments: Sequence[str]) -> list[bytes]:
        if "book" not in self.channels:
            return []
        return self._requests("unsubscribe", "book", instruments) + self._requests(
            "subscribe", "book", instruments
        )

    def ping(self) -> bytes:
        return dumps({"method": "ping", "req_id": self.next_id()})

    def on_control(self, kind: str, raw: bytes) -> tuple[list[ControlEvent], list[bytes]]:
        if kind == "heartbeat":
            return [], []
        if kind == "pong":
            return [ControlEvent("pong")], []
        msg = loads(raw)
        if not isinstance(msg, dict):
            return [ControlEvent("ignored", message=kind)], []
        res = msg.get("result")
        result: dict[str, Any] = res if isinstance(res, dict) else {}
        symbol = result.get("symbol") or msg.get("symbol")
        insts = (symbol,) if isinstance(symbol, str) else ()
        channel = result.get("channel")
        if msg.get("success") is False or kind == "error":
            text = str(msg.get("error") or "request failed")
            return [ControlEvent("error", insts, channel, f"{msg.get('method', '')}: {text}")], []
        method = msg.get("method")
        if method in ("subscribe", "unsubscribe"):
            return [ControlEvent(f"{method}d", insts, channel)], []
        return [ControlEvent("info", message=str(method or kind))], []
