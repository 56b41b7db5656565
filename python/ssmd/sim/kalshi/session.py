"""One Kalshi WebSocket connection: commands, subscriptions (sids), generated data, pings."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from ssmd.sim._fmt import iso_us, uuid4
from ssmd.sim.base import Link, Session
from ssmd.sim.kalshi.book import DOL, WHOLE, Book, MState, Sub, fp
from ssmd.sim.kalshi.rest import KalshiRest

__all__ = ["DATA_CHANNELS", "ERRORS", "PRIVATE_CHANNELS", "KalshiSession", "KalshiVenue"]


DATA_CHANNELS = ("ticker", "trade", "orderbook_delta", "market_lifecycle_v2")


PRIVATE_CHANNELS = (
    "fill",
    "market_positions",
    "user_orders",
    "order_group_updates",
    "communications",
    "multivariate_market_lifecycle",
)


ERRORS = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    9: "Authentication required",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market ticker required",
    25: "Subscription buffer overflow",
    26: "Subscription market limit exceeded",
}


_TICKER = (
    '{"type":"ticker","sid":%d,"msg":{"market_id":"%s","market_ticker":"%s","price_dollars":"%s",'
    '"yes_bid_dollars":"%s","yes_ask_dollars":"%s","volume_fp":"%s","open_interest_fp":"%s",'
    '"dollar_volume":%d,"dollar_open_interest":%d,"yes_bid_size_fp":"%s","yes_ask_size_fp":"%s",'
    '"last_trade_size_fp":"%s","ts":%d,"ts_ms":%d,"time":"%s"}}'
)


_TRADE = (
    '{"type":"trade","sid":%d,"seq":%d,"msg":{"trade_id":"%s","market_ticker":"%s",'
    '"yes_price_dollars":"%s","no_price_dollars":"%s","count_fp":"%s","taker_side":"%s",'
    '"taker_outcome_side":"%s","taker_book_side":"%s","is_block_trade":false,"ts":%d,"ts_ms":%d}}'
)


_DELTA = (
    '{"type":"orderbook_delta","sid":%d,"seq":%d,"msg":{"market_ticker":"%s","market_id":"%s",'
    '"price_dollars":"%s","delta_fp":"%s","side":"%s","ts":"%s","ts_ms":%d}}'
)


_LIFECYCLE_KINDS = (
    "close_date_updated",
    "deactivated",
    "activated",
    "metadata_updated",
    "price_level_structure_updated",
    "determined",
    "settled",
    "created",
    "event_lifecycle",
)


class KalshiSession(Session):
    venue: KalshiVenue

    def __init__(self, venue: KalshiVenue, conn: Link) -> None:
        super().__init__(venue, conn)
        headers = conn.request.headers
        self.authenticated = venue.public_key is not None or bool(headers.get("kalshi-access-key"))
        self.subs: dict[int, Sub] = {}
        self.next_sid = 1
        self.state: dict[str, MState] = {}
        self.streams: list[tuple[Sub, MState | None]] = []
        self.next_ping = time.monotonic() + venue.options.ping_interval
        self.limit = venue.options.kalshi_market_limit
        # trade ids: a random UUID v4 prefix per connection and a counter (unique, cheap)
        self.uid_prefix = uuid4(self.rng)[:24]
        self.uid_count = int(self.rnd() * 2**40)

    # -- keep-alive, slow reader -----------------------------------------------

    def housekeep(self, now: float) -> None:
        if now >= self.next_ping:
            self.next_ping = now + self.venue.options.ping_interval
            self.conn.send_ping(b"heartbeat")

    def on_slow_reader(self) -> None:
        for sub in list(self.subs.values()):
            if sub.channel in DATA_CHANNELS:
                frame: dict[str, Any] = {"type": "error", "sid": sub.sid}
                if sub.seq:
                    frame["seq"] = sub.seq
                frame["msg"] = {"code": 25, "msg": ERRORS[25]}
                self.send(orjson.dumps(frame), "error")
                del self.subs[sub.sid]
        self._rebuild()

    # -- commands --------------------------------------------------------------

    def _error(self, cmd_id: Any, code: int, sid: int | None = None) -> None:
        frame: dict[str, Any] = {}
        if cmd_id is not None:
            frame["id"] = cmd_id
        frame["type"] = "error"
        if sid is not None:
            frame["sid"] = sid
        frame["msg"] = {"code": code, "msg": ERRORS[code]}
        self.send(orjson.dumps(frame), "error")

    def on_text(self, data: bytes) -> None:
        try:
            req = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error(None, 1)
            return
        if not isinstance(req, dict):
            self._error(None, 1)
            return
        cmd_id = req.get("id") or None
        cmd = req.get("cmd")
        params = req.get("params")
        if cmd == "list_subscriptions":
            subs = [{"channel": s.channel, "sid": s.sid} for s in self.subs.values()]
            self.send(orjson.dumps({"id": cmd_id, "type": "ok", "msg": subs}), "ok")
            return
        if cmd not in ("subscribe", "unsubscribe", "update_subscription"):
            self._error(cmd_id, 5)
            return
        if not isinstance(params, dict):
            self._error(cmd_id, 2)
            return
        if cmd == "subscribe":
            self._subscribe(cmd_id, params)
        elif cmd == "unsubscribe":
            self._unsubscribe(cmd_id, params)
        else:
            self._update(cmd_id, params)
        self._rebuild()

    def _market_list(self, params: dict[str, Any]) -> list[str] | int | None:
        """Markets named by params (None: all); an error code when malformed."""
        one, many = params.get("market_ticker"), params.get("market_tickers")
        if one is not None and many is not None:
            return 11
        if one is not None:
            return [one] if isinstance(one, str) else 11
        if many is not None:
            if not isinstance(many, list) or not all(isinstance(t, str) for t in many):
                return 11
            return list(dict.fromkeys(many))
        return None

    def _subscribe(self, cmd_id: Any, params: dict[str, Any]) -> None:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            self._error(cmd_id, 3)
            return
        markets = self._market_list(params)
        if isinstance(markets, int):
            self._error(cmd_id, markets)
            return
        for ch in channels:
            if ch not in DATA_CHANNELS and ch not in PRIVATE_CHANNELS:
                self._error(cmd_id, 8)
                return
            if (ch == "orderbook_delta" or ch in PRIVATE_CHANNELS) and not self.authenticated:
                self._error(cmd_id, 9)
                return
            if ch == "orderbook_delta" and not markets:
                self._error(cmd_id, 14)
                return
        if markets is not None and len(markets) > self.limit:
            self._error(cmd_id, 26)
            return
        for ch in channels:
            sub = Sub(self.next_sid, ch, None if ch == "market_lifecycle_v2" else markets)
            self.next_sid += 1
            self.subs[sub.sid] = sub
            self.send(
                orjson.dumps(
                    {"id": cmd_id, "type": "subscribed", "msg": {"channel": ch, "sid": sub.sid}}
                ),
                "subscribed",
            )
            if sub.markets:
                if ch == "orderbook_delta":
                    self._snapshots(sub, sub.markets, None)
                elif ch == "ticker" and params.get("send_initial_snapshot"):
                    self._initial_tickers(sub, sub.markets)

    def _unsubscribe(self, cmd_id: Any, params: dict[str, Any]) -> None:
        sids = params.get("sids")
        if not isinstance(sids, list) or not sids:
            self._error(cmd_id, 4)
            return
        for sid in sids:
            sub = self.subs.pop(sid, None) if isinstance(sid, int) else None
            if sub is None:
                self._error(cmd_id, 7)
                continue
            frame: dict[str, Any] = {"id": cmd_id, "sid": sub.sid}
            if sub.seq:
                frame["seq"] = sub.seq
            frame["type"] = "unsubscribed"
            self.send(orjson.dumps(frame), "unsubscribed")

    def _update(self, cmd_id: Any, params: dict[str, Any]) -> None:
        sids = params.get("sids")
        if "sid" in params:
            sids = [params["sid"]] if sids is None else None
        if not isinstance(sids, list) or len(sids) != 1:
            self._error(cmd_id, 12)
            return
        sub = self.subs.get(sids[0]) if isinstance(sids[0], int) else None
        if sub is None:
            self._error(cmd_id, 7)
            return
        action = params.get("action")
        markets = self._market_list(params)
        if isinstance(markets, int):
            self._error(cmd_id, markets, sub.sid)
            return
        if action not in ("add_markets", "delete_markets", "get_snapshot") or sub.markets is None:
            self._error(cmd_id, 13, sub.sid)
            return
        if not markets:
            self._error(cmd_id, 14, sub.sid)
            return
        if action == "get_snapshot":
            if sub.channel != "orderbook_delta":
                self._error(cmd_id, 13, sub.sid)
                return
            self._snapshots(sub, [m for m in markets if m in sub.markets], cmd_id)
            return
        if action == "add_markets":
            added = [m for m in markets if m not in sub.markets]
            if len(sub.markets) + len(added) > self.limit:
                self._error(cmd_id, 26, sub.sid)
                return
            sub.markets.extend(added)
        else:
            gone = set(markets)
            sub.markets[:] = [m for m in sub.markets if m not in gone]
        frame: dict[str, Any] = {"id": cmd_id, "sid": sub.sid}
        if sub.seq:
            frame["seq"] = sub.seq
        frame["type"] = "ok"
        frame["msg"] = {"market_tickers": list(sub.markets)}
        self.send(orjson.dumps(frame), "ok")
        if action == "add_markets":
            if sub.channel == "orderbook_delta":
                self._snapshots(sub, added, None)
            elif sub.channel == "ticker" and params.get("send_initial_snapshot"):
                self._initial_tickers(sub, added)

    # -- state and streams -----------------------------------------------------

    def _state(self, ticker: str) -> MState | None:
        st = self.state.get(ticker)
        if st is None:
            m = self.venue.by_ticker.get(ticker)
            if m is None or not m.active:
                return None  # unknown or closed markets never produce data
            st = self.state[ticker] = MState(m, self.rnd)
        return st

    def _rebuild(self) -> None:
        streams: list[tuple[Sub, MState | None]] = []
        for sub in self.subs.values():
            if sub.channel not in DATA_CHANNELS:
                continue
            if sub.channel == "market_lifecycle_v2":
                streams.extend([(sub, None)] * 2)  # lifecycle events are rare
                continue
            names = (
                sub.markets if sub.markets is not None else [m.ticker for m in self.venue.active]
            )
            for t in names:
                st = self._state(t)
                if st is not None:
                    streams.append((sub, st))
        self.streams = streams

    def weight(self) -> int:
        return len(self.streams)

    def subscription_count(self) -> int:
        n = 0
        for sub in self.subs.values():
            n += len(sub.markets) if sub.markets is not None else len(self.venue.active)
        return n

    def _snapshots(self, sub: Sub, markets: list[str], cmd_id: Any) -> None:
        out = []
        head = f'"id":{cmd_id},' if cmd_id is not None else ""
        for t in markets:
            st = self._state(t)
            if st is None:
                continue
            if st.book is None:
                st.book = Book(st.price, self.rnd)
            sub.seq += 1
            out.append(
                f'{{{head}"type":"orderbook_snapshot","sid":{sub.sid},"seq":{sub.seq},"msg":{{'
                f'"market_ticker":"{t}","market_id":"{st.market.market_id}",{st.book.ladders()}}}}}'.encode()
            )
        self.conn.write_data(out)
        self.sent["book"] += len(out)

    def _initial_tickers(self, sub: Sub, markets: list[str]) -> None:
        ns = time.time_ns()
        out = []
        for t in markets:
            st = self._state(t)
            if st is not None:
                out.append(self._ticker(sub, st, ns).encode())
        self.conn.write_data(out)
        self.sent["ticker"] += len(out)

    # -- data ------------------------------------------------------------------

    def _ticker(self, sub: Sub, st: MState, ns: int, iso: str = "") -> str:
        rnd = self.rnd
        p = st.price
        ms = ns // 1_000_000
        return _TICKER % (
            sub.sid,
            st.market.market_id,
            st.market.ticker,
            DOL[p],
            DOL[max(0, p - 1)],
            DOL[min(100, p + 1)],
            fp(st.volume),
            fp(st.oi),
            st.volume * p // 10_000,
            st.oi * p // 10_000,
            WHOLE[int(1 + rnd() * 3000)],
            WHOLE[int(1 + rnd() * 3000)],
            WHOLE[int(1 + rnd() * 100)],
            ms // 1000,
            ms,
            iso or iso_us(ns),
        )

    def _uid(self) -> str:
        self.uid_count += 1
        return f"{self.uid_prefix}{self.uid_count & 0xFFFFFFFFFFFF:012x}"

    def generate(self, n: int, out: list[bytes]) -> None:
        streams = self.streams
        if not streams:
            return
        count = len(streams)
        rnd = self.rnd
        ns = time.time_ns()
        ms = ns // 1_000_000
        stalled = self.server.instrument_stalled if self.server.instrument_stalls else None
        iso = tick_iso = ""
        n_ticker = n_trade = n_book = n_life = 0
        attempts = 0
        ap = out.append
        while n_ticker + n_trade + n_book + n_life < n and attempts < 2 * n + 8:
            attempts += 1
            sub, st = streams[int(rnd() * count)]
            if st is None:
                life = self._lifecycle(sub, ms, stalled)
                if life is not None:
                    ap(life.encode())
                    n_life += 1
                continue
            m = st.market
            if stalled and (stalled(m.ticker) or stalled("channel:" + sub.channel)):
                continue
            ch = sub.channel
            if ch == "ticker":
                st.price = min(99, max(1, st.price + (rnd() < 0.5) - (rnd() < 0.5)))
                if not tick_iso:
                    tick_iso = iso_us(ns)
                ap(self._ticker(sub, st, ns, tick_iso).encode())
                n_ticker += 1
            elif ch == "trade":
                yes = rnd() < 0.5
                p = st.price
                count_fp = 100 * int(1 + rnd() ** 3 * 500)
                st.volume += count_fp
                sub.seq += 1
                side = "yes" if yes else "no"
                uid = self._uid()
                self.venue.trade_log.add(
                    m.ticker, uid, ms, DOL[p], DOL[100 - p], fp(count_fp), side
                )
                ap(
                    (
                        _TRADE
                        % (
                            sub.sid,
                            sub.seq,
                            uid,
                            m.ticker,
                            DOL[p],
                            DOL[100 - p],
                            fp(count_fp),
                            side,
                            side,
                            "bid" if yes else "ask",
                            ms // 1000,
                            ms,
                        )
                    ).encode()
                )
                n_trade += 1
            else:
                if st.book is None:
                    st.book = Book(st.price, rnd)
                side, p, d = st.book.delta(rnd)
                sub.seq += 1
                if not iso:
                    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))
                ap(
                    (
                        _DELTA
                        % (
                            sub.sid,
                            sub.seq,
                            m.ticker,
                            m.market_id,
                            DOL[p],
                            fp(d),
                            side,
                            iso,
                            ms,
                        )
                    ).encode()
                )
                n_book += 1
        sent = self.sent
        sent["ticker"] += n_ticker
        sent["trade"] += n_trade
        sent["book"] += n_book
        sent["lifecycle"] += n_life

    def _lifecycle(self, sub: Sub, ms: int, stalled: Callable[[str], bool] | None) -> str | None:
        rnd = self.rnd
        venue = self.venue
        m = venue.markets[int(rnd() * len(venue.markets))]
        if stalled and stalled(m.ticker):
            return None  # a stalled market is silent on the venue-wide channel too
        kind = _LIFECYCLE_KINDS[int(rnd() * len(_LIFECYCLE_KINDS))]
        sub.seq += 1
        s = ms // 1000
        if kind == "event_lifecycle":
            ev = next(e for e in venue.events if e["event_ticker"] == m.event)
            body: dict[str, Any] = {
                "event_ticker": m.event,
                "exchange_index": 0,
                "title": ev["title"],
                "subtitle": ev["sub_title"],
                "collateral_return_type": "",
                "series_ticker": m.series,
            }
            return orjson.dumps(
                {"type": "event_lifecycle", "sid": sub.sid, "seq": sub.seq, "msg": body}
            ).decode()
        msg: dict[str, Any] = {"market_ticker": m.ticker}
        if kind == "created":
            msg.update(
                {
                    "exchange_index": 0,
                    "open_ts": s,
                    "close_ts": s + 86_400,
                    "additional_metadata": {
                        "name": m.ticker,
                        "title": m.ticker,
                        "yes_sub_title": str(m.strike),
                        "no_sub_title": str(m.strike),
                        "rules_primary": "Simulated.",
                        "rules_secondary": "",
                        "can_close_early": True,
                        "event_ticker": m.event,
                        "expected_expiration_ts": s + 86_400,
                    },
                }
            )
        elif kind == "close_date_updated":
            msg["close_ts"] = s + 3_600
        elif kind in ("activated", "deactivated"):
            msg["is_deactivated"] = kind == "deactivated"
        elif kind == "determined":
            msg.update(
                {
                    "determination_ts": s,
                    "result": "yes" if m.mid >= 50 else "no",
                    "settlement_value": "1.0000" if m.mid >= 50 else "0.0000",
                }
            )
        elif kind == "settled":
            msg["settled_ts"] = s
        elif kind == "metadata_updated":
            msg["yes_sub_title"] = f"{m.strike} or above"
        else:
            msg.update(
                {
                    "price_level_structure": "linear_cent",
                    "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
                }
            )
        msg["event_type"] = kind
        return orjson.dumps(
            {"type": "market_lifecycle_v2", "sid": sub.sid, "seq": sub.seq, "msg": msg}
        ).decode()


class KalshiVenue(KalshiRest):
    """The simulated venue: its REST listings and a :class:`KalshiSession` per connection."""

    def session(self, conn: Link) -> Session:
        return KalshiSession(self, conn)
