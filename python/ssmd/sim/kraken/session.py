"""One Kraken v2 WebSocket connection: methods, channel subscriptions, generated data, heartbeats."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import orjson

from ssmd.sim._fmt import BatchClock, iso_us, trim
from ssmd.sim.base import Link, Session
from ssmd.sim.kraken.book import L2Book, Memo
from ssmd.sim.kraken.rest import KrakenRest, now_iso
from ssmd.sim.kraken.universe import Pair

__all__ = ["DEPTHS", "TRADE_SNAPSHOT", "KrakenSession", "KrakenVenue"]


DEPTHS = (10, 25, 100, 500, 1000)


TRADE_SNAPSHOT = 50


class _Sym:
    """One symbol's market on one connection, and what is subscribed of it."""

    __slots__ = (
        "_stats",
        "book",
        "high",
        "last",
        "low",
        "open",
        "pair",
        "recent",
        "sub_book",
        "sub_ticker",
        "sub_trade",
        "trade_id",
        "trades",
        "volume",
        "vwap_num",
    )

    def __init__(self, pair: Pair, rnd: Any, trade_id: int) -> None:
        self.pair = pair
        self.book = L2Book(rnd, pair, 10)
        self.sub_book = False
        self.sub_trade = False
        self.sub_ticker = ""  # "", "trades" or "bbo"
        b, _, _, _ = self.book.top()
        self.last = self.open = self.low = self.high = b
        self.volume = 0
        self.vwap_num = 0
        self.trade_id = trade_id
        self.trades = 0
        self.recent: deque[str] = deque(maxlen=TRADE_SNAPSHOT)
        self._stats = ""

    @property
    def stats(self) -> str:
        """The ticker's 24 h part (last … trades), rebuilt after trades."""
        if not self._stats:
            pt = self.book.ptxt
            vwap = self.vwap_num // self.volume if self.volume else self.last
            change = self.last - self.open
            pct = change * 10000 // self.open if self.open else 0
            change_txt = pt[change] if change >= 0 else "-" + pt[-change]
            self._stats = (
                f'"last":{pt[self.last]},"volume":{trim(self.volume, self.pair.qp)},"vwap":{pt[vwap]},'
                f'"low":{pt[self.low]},"high":{pt[self.high]},"change":{change_txt},'
                f'"change_pct":{_PCT[pct]},"trades":{self.trades}'
            )
        return self._stats


_PCT = Memo(2)


#: stall keys of whole channels (SimServer.inject("stall", channel=…)), by stream kind
_CHANNEL_KEYS = ("channel:book", "channel:trade", "channel:ticker")


_BOOK = '{"channel":"book","type":"%s","data":[{"symbol":"%s","bids":[%s],"asks":[%s],"checksum":%d,"timestamp":"%s"}]}'


_TICKER = '{"channel":"ticker","type":"%s","data":[{"symbol":"%s",%s,%s,"timestamp":"%s"}]}'


_TRADE = (
    '{"symbol":"%s","side":"%s","price":%s,"qty":%s,"ord_type":"%s","trade_id":%d,"timestamp":"%s"}'
)


class KrakenSession(Session):
    venue: KrakenVenue

    def __init__(self, venue: KrakenVenue, conn: Link) -> None:
        super().__init__(venue, conn)
        self.syms: dict[str, _Sym] = {}
        self.streams: list[tuple[_Sym, int]] = []  # (symbol, 0 book / 1 trade / 2 ticker)
        self.subscribed_any = False
        self.instrument_sub = False
        opts = venue.options
        self.heartbeat = opts.heartbeat_interval or 1.0
        self.clock = BatchClock()

    # -- control -------------------------------------------------------------

    def on_open(self) -> None:
        conn_id = (1 << 63) | self.rng.getrandbits(63)
        self._data(
            [
                '{"channel":"status","type":"update","data":[{"version":"2.0.10","system":"online",'
                f'"api_version":"v2","connection_id":{conn_id},"upcoming_maintenance":[],"emergency":[]}}]}}'
            ],
            "status",
        )

    def _reply(self, obj: dict[str, Any], time_in: str, kind: str) -> None:
        obj["time_in"] = time_in
        obj["time_out"] = now_iso()
        self.send(orjson.dumps(obj), kind)

    def on_text(self, data: bytes) -> None:
        time_in = now_iso()
        try:
            req = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._reply({"error": "EGeneral:Invalid arguments", "success": False}, time_in, "error")
            return
        if not isinstance(req, dict):
            self._reply({"error": "EGeneral:Invalid arguments", "success": False}, time_in, "error")
            return
        method = req.get("method")
        req_id = req.get("req_id")
        head: dict[str, Any] = {"method": method}
        if req_id is not None:
            head["req_id"] = req_id
        if method == "ping":
            self._reply(
                {"method": "pong", **({"req_id": req_id} if req_id is not None else {})},
                time_in,
                "pong",
            )
            return
        if method not in ("subscribe", "unsubscribe"):
            self._reply(
                {"error": "Method not supported", **head, "success": False}, time_in, "error"
            )
            return
        params = req.get("params")
        if not isinstance(params, dict):
            self._reply(
                {"error": "EGeneral:Invalid arguments", **head, "success": False}, time_in, "error"
            )
            return
        channel = params.get("channel")
        if channel == "instrument":
            self._instrument(method, params, head, time_in)
            return
        if channel not in ("ticker", "trade", "book"):
            self._reply(
                {"error": f"Channel {channel} not supported", **head, "success": False},
                time_in,
                "error",
            )
            return
        symbols = params.get("symbol")
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) for s in symbols)
        ):
            self._reply(
                {"error": "EGeneral:Invalid arguments:symbol", **head, "success": False},
                time_in,
                "error",
            )
            return
        result: dict[str, Any] = {"channel": channel}
        if channel == "book":
            depth = params.get("depth", 10)
            if depth not in DEPTHS:
                self._reply(
                    {"error": "EGeneral:Invalid arguments:depth", **head, "success": False},
                    time_in,
                    "error",
                )
                return
            result["depth"] = depth
        if channel == "ticker":
            trigger = params.get("event_trigger", "trades")
            if trigger not in ("trades", "bbo"):
                self._reply(
                    {"error": "EGeneral:Invalid arguments:event_trigger", **head, "success": False},
                    time_in,
                    "error",
                )
                return
            result["event_trigger"] = trigger
        snapshot = params.get("snapshot", channel != "trade")
        if method == "subscribe":
            result["snapshot"] = bool(snapshot)
        for sym in symbols:
            self._one(method, channel, sym, dict(result), head, time_in)
        self._rebuild()

    def _one(
        self,
        method: str,
        channel: str,
        symbol: str,
        result: dict[str, Any],
        head: dict[str, Any],
        time_in: str,
    ) -> None:
        pair = self.venue.by_symbol.get(symbol)

        def fail(error: str) -> None:
            self._reply(
                {"error": error, **head, "success": False, "symbol": symbol}, time_in, "error"
            )

        if pair is None:
            fail(f"Currency pair not supported {symbol}")
            return
        st = self.syms.get(symbol)
        subscribed = st is not None and (
            (channel == "book" and st.sub_book)
            or (channel == "trade" and st.sub_trade)
            or (channel == "ticker" and bool(st.sub_ticker))
        )
        if method == "unsubscribe":
            if not subscribed or st is None:
                fail("Subscription Not Found")
                return
            if channel == "book":
                st.sub_book = False
            elif channel == "trade":
                st.sub_trade = False
            else:
                result["event_trigger"] = st.sub_ticker
                st.sub_ticker = ""
            result["symbol"] = symbol
            self._reply({**head, "result": result, "success": True}, time_in, "unsubscribe")
            return
        if subscribed:
            fail("Already subscribed")
            return
        if st is None:
            st = self.syms[symbol] = _Sym(pair, self.rnd, 1_000_000 + int(self.rnd() * 9_000_000))
        result["symbol"] = symbol
        self._reply({**head, "result": result, "success": True}, time_in, "subscribe")
        self.subscribed_any = True
        snap = bool(result.get("snapshot"))
        ns = time.time_ns()
        ts = iso_us(ns)
        self.clock.sent(ns)
        if channel == "book":
            st.sub_book = True
            st.book.set_depth(int(result["depth"]))
            if snap:
                bids, asks = st.book.levels_json()
                self._data(
                    [_BOOK % ("snapshot", symbol, bids, asks, st.book.checksum(), ts)], "book"
                )
        elif channel == "trade":
            st.sub_trade = True
            if snap:
                while len(st.recent) < TRADE_SNAPSHOT:
                    self._trade(st, ts, ns)
                msg = '{"channel":"trade","type":"snapshot","data":[' + ",".join(st.recent) + "]}"
                self._data([msg], "trade")
        else:
            st.sub_ticker = str(result["event_trigger"])
            if snap:
                self._data([self._ticker(st, "snapshot", ts)], "ticker")

    def _data(self, msgs: list[str], kind: str) -> None:
        self.conn.write_data([m.encode() for m in msgs])
        self.sent[kind] += len(msgs)

    def _instrument(
        self, method: str, params: dict[str, Any], head: dict[str, Any], time_in: str
    ) -> None:
        snap = bool(params.get("snapshot", True))
        if method == "unsubscribe":
            if not self.instrument_sub:
                self._reply(
                    {"error": "Subscription Not Found", **head, "success": False}, time_in, "error"
                )
                return
            self.instrument_sub = False
            self._reply(
                {**head, "result": {"channel": "instrument"}, "success": True},
                time_in,
                "unsubscribe",
            )
            return
        self.instrument_sub = True
        self._reply(
            {**head, "result": {"channel": "instrument", "snapshot": snap}, "success": True},
            time_in,
            "subscribe",
        )
        self.subscribed_any = True
        if snap:
            body = orjson.dumps(
                {
                    "channel": "instrument",
                    "type": "snapshot",
                    "data": self.venue.instrument_snapshot(),
                }
            )
            self.conn.write_data([body])
            self.sent["instrument"] += 1

    def _rebuild(self) -> None:
        streams: list[tuple[_Sym, int]] = []
        for st in self.syms.values():
            if st.sub_book:
                streams.append((st, 0))
            if st.sub_trade:
                streams.append((st, 1))
            if st.sub_ticker:
                streams.append((st, 2))
        self.streams = streams

    def weight(self) -> int:
        return len(self.streams)

    def subscription_count(self) -> int:
        return len(self.streams)

    def housekeep(self, now: float) -> None:
        if self.subscribed_any and now - self.conn.last_sent >= self.heartbeat:
            self.send('{"channel":"heartbeat"}', "heartbeat")

    # -- data ------------------------------------------------------------------

    def _ticker(self, st: _Sym, ty: str, ts: str) -> str:
        return _TICKER % (ty, st.pair.symbol, st.book.top_text(), st.stats, ts)

    def _trade(self, st: _Sym, ts: str, ns: int) -> str:
        """Trades at the touch; those sent on a trade channel go in the venue's history."""
        rnd = self.rnd
        buy = rnd() < 0.5
        book = st.book
        b, _, a, _ = book.top()
        p = a if buy else b
        ptxt = book.ptxt[p]
        side = "buy" if buy else "sell"
        log = self.venue.trade_log if st.sub_trade else None
        items = []
        for _ in range(1 + (rnd() < 0.15) + (rnd() < 0.05)):
            q, qt = book.draw()
            st.trade_id += 1
            st.trades += 1
            st.volume += q
            st.vwap_num += p * q
            ord_type = "market" if rnd() < 0.4 else "limit"
            item = _TRADE % (st.pair.symbol, side, ptxt, qt, ord_type, st.trade_id, ts)
            if log is not None:
                log.add(st.pair.symbol, ns, ptxt, qt, side, ord_type, st.trade_id)
            st.recent.append(item)
            items.append(item)
        st.last = p
        if p < st.low:
            st.low = p
        elif p > st.high:
            st.high = p
        st._stats = ""
        return '{"channel":"trade","type":"update","data":[' + ",".join(items) + "]}"

    def generate(self, n: int, out: list[bytes]) -> None:
        streams = self.streams
        if not streams:
            return
        count = len(streams)
        rnd = self.rnd
        fault = self.conn.faults
        corrupting = fault.plan.corrupt_checksum > 0 or fault.pending["corrupt_checksum"] > 0
        stalls = self.server.instrument_stalls
        stalled = self.server.instrument_stalled
        clock = self.clock
        ts = iso_us(clock.batch(n))  # book and ticker updates: the batch's time
        stamp = clock.iso_us
        n_book = n_trade = n_ticker = 0
        attempts = 0
        ap = out.append
        trade = self._trade
        while n_book + n_trade + n_ticker < n and attempts < 2 * n + 8:
            attempts += 1
            st, ch = streams[int(rnd() * count)]
            if stalls and (stalled(st.pair.symbol) or stalled(_CHANNEL_KEYS[ch])):
                continue
            trigger = st.sub_ticker
            if ch == 1 or (ch == 2 and trigger == "trades"):
                ns = clock.at(n_book + n_trade + n_ticker)  # trades: spread over it
                msg = trade(st, stamp(ns), ns)
                if st.sub_trade:
                    ap(msg.encode())
                    n_trade += 1
                if trigger == "trades":
                    ap(
                        (
                            _TICKER % ("update", st.pair.symbol, st.book.top_text(), st.stats, ts)
                        ).encode()
                    )
                    n_ticker += 1
                continue
            book = st.book
            if trigger == "bbo":
                b0, a0 = book.bids[-1], book.asks[0]
                top0 = (b0, book.bq[b0], a0, book.aq[a0])
            bids, asks = book.step(ch == 2)
            if st.sub_book:
                ck = book.checksum()
                if corrupting and fault.corrupt_checksum():
                    ck ^= 0x5A5A5A5A
                ap((_BOOK % ("update", st.pair.symbol, bids, asks, ck, ts)).encode())
                n_book += 1
            if trigger == "bbo":
                b0, a0 = book.bids[-1], book.asks[0]
                if top0 != (b0, book.bq[b0], a0, book.aq[a0]):
                    ap(
                        (
                            _TICKER % ("update", st.pair.symbol, book.top_text(), st.stats, ts)
                        ).encode()
                    )
                    n_ticker += 1
        sent = self.sent
        sent["book"] += n_book
        sent["trade"] += n_trade
        sent["ticker"] += n_ticker


class KrakenVenue(KrakenRest):
    """The simulated venue: its REST listings and a :class:`KrakenSession` per connection."""

    def session(self, conn: Link) -> Session:
        return KrakenSession(self, conn)
