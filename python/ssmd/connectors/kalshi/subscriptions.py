"""Kalshi commands and replies (sheet ``kalshi.md`` sections 2 and 4).

One subscription (``sid``) per channel per connection, holding at most the
connection's share of markets (256 by default): the first ``subscribe``
names the markets, later changes are ``update_subscription`` with
``add_markets`` / ``delete_markets`` on that sid (one sid per command);
changes made while a subscribe awaits its ``subscribed`` reply are queued
and sent when the sid is known. ``market_lifecycle_v2`` covers every market
and is subscribed once, on connection 0. A book resync is
``update_subscription`` ``get_snapshot``. Errors 10 and 25 end a
subscription: it is subscribed again and recorded as a ``resync``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ssmd.connectors.base import ControlEvent, Session, dumps, loads
from ssmd.connectors.kalshi.config import KalshiConfig

__all__ = ["GLOBAL_CHANNELS", "TERMINAL_ERRORS", "KalshiSession"]

#: channels that always cover every market
GLOBAL_CHANNELS = ("market_lifecycle_v2",)
#: error codes that end a subscription (resubscribe)
TERMINAL_ERRORS = (10, 25)


class KalshiSession(Session[KalshiConfig]):
    """One Kalshi connection: sids, pending subscribes, queued changes."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.per_market = [c for c in self.channels if c not in GLOBAL_CHANNELS]
        self.sids: dict[str, int] = {}
        self.pending: dict[int, str] = {}  # command id -> channel
        self.queued: dict[str, list[tuple[str, list[str]]]] = {}
        self.markets: dict[str, set[str]] = {c: set() for c in self.per_market}
        self.all_markets = self.connector.resolution.global_subscription

    def _cmd(self, cmd: str, params: dict[str, Any]) -> tuple[int, bytes]:
        i = self.next_id()
        return i, dumps({"id": i, "cmd": cmd, "params": params})

    def _subscribe_channel(self, channel: str, markets: Sequence[str] | None) -> bytes:
        params: dict[str, Any] = {"channels": [channel]}
        if markets is not None:
            params["market_tickers"] = list(markets)
            if channel == "ticker" and self.config.initial_snapshot:
                params["send_initial_snapshot"] = True
        i, msg = self._cmd("subscribe", params)
        self.pending[i] = channel
        return msg

    def _update(self, channel: str, action: str, markets: list[str]) -> bytes:
        params = {"sids": [self.sids[channel]], "market_tickers": markets, "action": action}
        return self._cmd("update_subscription", params)[1]

    def on_open(self) -> list[bytes]:
        out = []
        if self.index == 0:
            out += [self._subscribe_channel(c, None) for c in self.channels if c in GLOBAL_CHANNELS]
            if self.all_markets:
                out += [self._subscribe_channel(c, None) for c in self.per_market]
        return out

    def _change(self, action: str, instruments: Sequence[str]) -> list[bytes]:
        if self.all_markets:  # venue-wide sids already carry every market
            return []
        out = []
        for ch in self.per_market:
            have = self.markets[ch]
            if action == "add_markets":
                todo = [m for m in instruments if m not in have]
                have.update(todo)
            else:
                todo = [m for m in instruments if m in have]
                have.difference_update(todo)
            if not todo:
                continue
            if ch in self.sids:
                if action == "delete_markets" and not have:
                    # an empty market list could read as "every market": end the sid instead
                    out.append(self._cmd("unsubscribe", {"sids": [self.sids.pop(ch)]})[1])
                else:
                    out.append(self._update(ch, action, todo))
            elif ch in self.pending.values():
                self.queued.setdefault(ch, []).append((action, todo))
            elif action == "add_markets":
                out.append(self._subscribe_channel(ch, todo))
        return out

    def subscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return self._change("add_markets", instruments)

    def unsubscribe(self, instruments: Sequence[str]) -> list[bytes]:
        return self._change("delete_markets", instruments)

    def resync(self, instruments: Sequence[str]) -> list[bytes]:
        ch = "orderbook_delta"
        if ch not in self.sids:
            return []
        return [self._update(ch, "get_snapshot", list(instruments))]

    def on_control(self, kind: str, raw: bytes) -> tuple[list[ControlEvent], list[bytes]]:
        msg = loads(raw)
        if not isinstance(msg, dict):
            return [ControlEvent("ignored", message=kind)], []
        raw_body = msg.get("msg")
        body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
        raw_id = msg.get("id")
        cmd_id: int = raw_id if isinstance(raw_id, int) else -1
        if kind == "subscribed":
            channel = body.get("channel") or self.pending.get(cmd_id)
            self.pending.pop(cmd_id, None)
            sid = body.get("sid", msg.get("sid"))
            if not isinstance(channel, str) or not isinstance(sid, int):
                return [ControlEvent("ignored", message="subscribed without channel/sid")], []
            self.sids[channel] = sid
            out = self._flush_queue(channel)
            return [ControlEvent("subscribed", channel=channel)], out
        if kind == "error":
            return self._error(msg, body, cmd_id)
        if kind in ("ok", "unsubscribed"):
            return [ControlEvent("ignored", message=kind)], []
        return [ControlEvent("ignored", message=kind)], []

    def _flush_queue(self, channel: str) -> list[bytes]:
        out = []
        for action, markets in self.queued.pop(channel, []):
            if action == "delete_markets" and not self.markets[channel]:
                out.append(self._cmd("unsubscribe", {"sids": [self.sids.pop(channel)]})[1])
                break
            out.append(self._update(channel, action, markets))
        return out

    def _error(
        self, msg: dict[str, Any], body: dict[str, Any], cmd_id: int
    ) -> tuple[list[ControlEvent], list[bytes]]:
        code = body.get("code")
        text = f"error {code}: {body.get('msg', '')}"
        failed = self.pending.pop(cmd_id, None)
        if failed is not None:
            self.queued.pop(failed, None)
            return [
                ControlEvent("error", tuple(sorted(self.markets.get(failed, ()))), failed, text)
            ], []
        sid = msg.get("sid")
        channel = next((c for c, s in self.sids.items() if s == sid), None)
        if code in TERMINAL_ERRORS and channel is not None:
            del self.sids[channel]
            markets = sorted(self.markets.get(channel, ()))
            if channel in GLOBAL_CHANNELS or (self.all_markets and not markets):
                out = [self._subscribe_channel(channel, None)]
            else:
                out = [self._subscribe_channel(channel, markets)] if markets else []
            ev = ControlEvent("resubscribed", tuple(markets), channel, text)
            return [ev], out
        return [ControlEvent("error", channel=channel, message=text)], []
