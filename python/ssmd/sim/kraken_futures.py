"""Kraken Futures WebSocket v1 and REST v3 (protocol sheet ``kraken-futures.md``).

WebSocket ``/ws/v1``: ``{"event":"info","version":1}`` on connect;
``subscribe``/``unsubscribe`` per feed with ``product_ids`` answered by one
``subscribed``/``unsubscribed`` per request; ``error`` (``Invalid product
id``, ``Json Error``) and ``alert`` (invalid or authenticated feed) for bad
requests; ``ticker`` (a full ticker on subscribe, then at most one per
product per second), ``trade`` (``trade_snapshot`` newest first, then
trades with ``seq`` per product), ``book`` (``book_snapshot`` then one-level
``book`` deltas with ``seq``), the ``heartbeat`` feed, and the ``challenge``
reply. A connection that sends no WebSocket Ping for 60 s is closed.

REST: ``GET /derivatives/api/v3/instruments``, ``/tickers`` and
``/tickers/{symbol}``.
"""

from __future__ import annotations

import bisect
import calendar
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from picows import WSCloseCode

from ssmd.sim._fmt import iso_ms, trim, uuid4
from ssmd.sim.http import HttpError, Request, Response, json_response
from ssmd.sim.server import Session, SimConnection, Venue

__all__ = ["KrakenFuturesVenue", "Product"]

#: served feeds (``ticker_lite`` and candles are not simulated: an ``alert`` like any unknown feed)
PUBLIC_FEEDS = ("ticker", "trade", "book", "heartbeat")
PRIVATE_FEEDS = (
    "open_orders",
    "open_orders_verbose",
    "fills",
    "open_positions",
    "account_log",
    "balances",
    "notifications_auth",
)
SNAPSHOT_TRADES = 20
#: stall keys of whole feeds (SimServer.inject("stall", channel=…)), by stream kind
_CHANNEL_KEYS = ("channel:book", "channel:trade", "channel:ticker")
BOOK_LEVELS = 25


@dataclass(frozen=True)
class Product:
    symbol: str
    type: str  # flexible_futures | futures_inverse
    pp: int  # price decimals
    step: int  # tick size in units of 10**-pp
    qp: int  # contractValueTradePrecision
    price: float
    base: str
    pair: str  # XBT:USD
    last_trading: str | None = None  # dated contracts only
    underlying: str | None = None

    @property
    def tick(self) -> float:
        return self.step * 10.0**-self.pp

    @property
    def perpetual(self) -> bool:
        return self.last_trading is None


_PRODUCTS = [
    Product("PF_XBTUSD", "flexible_futures", 0, 1, 4, 84000.0, "BTC", "XBT:USD"),
    Product("PF_ETHUSD", "flexible_futures", 1, 1, 3, 3200.0, "ETH", "ETH:USD"),
    Product("PF_SOLUSD", "flexible_futures", 2, 1, 2, 180.0, "SOL", "SOL:USD"),
    Product("PF_XRPUSD", "flexible_futures", 4, 1, 0, 2.2, "XRP", "XRP:USD"),
    Product("PF_DOGEUSD", "flexible_futures", 6, 1, 0, 0.17, "DOGE", "DOGE:USD"),
    Product("PF_ADAUSD", "flexible_futures", 6, 1, 0, 0.7, "ADA", "ADA:USD"),
    Product("PF_LTCUSD", "flexible_futures", 2, 1, 2, 88.0, "LTC", "LTC:USD"),
    Product("PF_LINKUSD", "flexible_futures", 3, 1, 1, 14.5, "LINK", "LINK:USD"),
    Product("PI_XBTUSD", "futures_inverse", 1, 5, 0, 84000.0, "BTC", "XBT:USD", None, "rr_xbtusd"),
    Product("PI_ETHUSD", "futures_inverse", 2, 5, 0, 3200.0, "ETH", "ETH:USD", None, "rr_ethusd"),
    Product(
        "FF_XBTUSD_261225",
        "flexible_futures",
        0,
        1,
        4,
        84500.0,
        "BTC",
        "XBT:USD",
        "2026-12-25T08:00:00Z",
    ),
]


def _universe(instruments: Sequence[str] | int | None) -> list[Product]:
    if instruments is None:
        return list(_PRODUCTS)

    def synthetic(sym: str) -> Product:
        base = (
            sym.split("_")[1][:-3] if sym.count("_") >= 1 and len(sym.split("_")[1]) > 3 else "SIM"
        )
        return Product(sym, "flexible_futures", 4, 1, 2, 10.0, base, f"{base}:USD")

    if isinstance(instruments, int):
        extra = [synthetic(f"PF_SIM{i}USD") for i in range(max(0, instruments - len(_PRODUCTS)))]
        return (list(_PRODUCTS) + extra)[:instruments]
    known = {p.symbol: p for p in _PRODUCTS}
    return [known.get(s) or synthetic(s) for s in dict.fromkeys(instruments)]


class _Book:
    """A plain L2 book on integer ticks; deltas set one level (0 removes)."""

    __slots__ = ("asks", "bids", "levels", "product", "qmax", "rnd")

    def __init__(self, rnd: Any, product: Product) -> None:
        self.rnd = rnd
        self.product = product
        self.qmax = max(10, int(30000 / product.price * 10**product.qp))
        step = product.step
        mid = round(product.price * 10**product.pp / step) * step
        self.bids: list[int] = []  # ascending, best last
        self.asks: list[int] = []  # ascending, best first
        self.levels: dict[tuple[bool, int], int] = {}
        for i in range(1, BOOK_LEVELS + 1):
            self._set(True, mid - i * step, self.qty())
            self._set(False, mid + i * step, self.qty())

    def qty(self) -> int:
        return int(self.rnd() ** 3 * self.qmax) + 1

    def _set(self, bid: bool, p: int, q: int) -> None:
        side = self.bids if bid else self.asks
        if q == 0:
            if (bid, p) in self.levels:
                del self.levels[bid, p]
                side.pop(bisect.bisect_left(side, p))
            return
        if (bid, p) not in self.levels:
            bisect.insort(side, p)
        self.levels[bid, p] = q

    def step(self) -> tuple[bool, int, int]:
        """One change: (bid side, price, new qty; 0 removes the level)."""
        rnd = self.rnd
        bid = rnd() < 0.5
        side = self.bids if bid else self.asks
        n = len(side)
        step = self.product.step
        r = rnd()
        if n > 35 or (r < 0.25 and n > 12):
            p = side[n - 1 - int(rnd() ** 2 * n)] if bid else side[int(rnd() ** 2 * n)]
            q = 0
        elif n < 15 or r < 0.45:
            best_b, best_a = self.bids[-1], self.asks[0]
            if best_a - best_b > step and rnd() < 0.5:
                p = best_b + step if bid else best_a - step
            else:
                edge = side[0] if bid else side[-1]
                p = (
                    edge - step * (1 + int(rnd() * 3))
                    if bid
                    else edge + step * (1 + int(rnd() * 3))
                )
                if p <= 0:
                    p = side[-1] if bid else side[0]
            q = self.qty()
        else:
            p = side[n - 1 - int(rnd() ** 2 * n)] if bid else side[int(rnd() ** 2 * n)]
            q = self.qty()
        self._set(bid, p, q)
        return bid, p, q

    def ladders(self) -> tuple[str, str]:
        pp, qp, lv = self.product.pp, self.product.qp, self.levels
        bids = ",".join(
            f'{{"price":{trim(p, pp)},"qty":{trim(lv[True, p], qp)}}}' for p in reversed(self.bids)
        )
        asks = ",".join(
            f'{{"price":{trim(p, pp)},"qty":{trim(lv[False, p], qp)}}}' for p in self.asks
        )
        return bids, asks


class _Prod:
    """One product on one connection: book, trades, subscriptions."""

    __slots__ = (
        "book",
        "book_seq",
        "last",
        "next_ticker",
        "product",
        "recent",
        "sub_book",
        "sub_ticker",
        "sub_trade",
        "trade_seq",
        "volume",
    )

    def __init__(self, product: Product, rnd: Any) -> None:
        self.product = product
        self.book = _Book(rnd, product)
        self.book_seq = 1000 + int(rnd() * 100_000)
        self.trade_seq = 10_000 + int(rnd() * 1_000_000)
        self.last = self.book.bids[-1]
        self.volume = 0
        self.recent: deque[str] = deque(maxlen=SNAPSHOT_TRADES)
        self.sub_ticker = self.sub_trade = self.sub_book = False
        self.next_ticker = 0.0


_TRADE = (
    '{"feed":"trade","product_id":"%s","uid":"%s","side":"%s","type":"%s","seq":%d,'
    '"time":%d,"qty":%s,"price":%s}'
)
_DELTA = '{"feed":"book","product_id":"%s","side":"%s","seq":%d,"price":%s,"qty":%s,"timestamp":%d}'


class KrakenFuturesVenue(Venue):
    name = "kraken-futures"
    ws_path = "/ws/v1"
    rest_path = "/derivatives/api/v3"

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.products = _universe(instruments)
        self.by_symbol = {p.symbol: p for p in self.products}

    def instrument_ids(self) -> list[str]:
        return [p.symbol for p in self.products]

    def session(self, conn: SimConnection) -> Session:
        return KrakenFuturesSession(self, conn)

    def rest_error(
        self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        text = {429: "apiLimitExceeded", 404: "notFound"}.get(status, message)
        return json_response(
            {"result": "error", "error": text, "serverTime": iso_ms(time.time_ns())},
            status,
            headers,
        )

    def rest(self, req: Request) -> Response:
        path = req.path.rstrip("/")
        root = self.rest_path
        now = iso_ms(time.time_ns())
        rec = self.records
        if path == f"{root}/instruments":
            items = [
                rec.record("instruments", p.symbol, self.instrument(p))
                for p in self.products
                if rec.listed("instruments", p.symbol)
            ]
            items = rec.head("instruments", items)
            return json_response({"result": "success", "instruments": items, "serverTime": now})
        if path == f"{root}/tickers":
            items = [
                rec.record("tickers", p.symbol, self.rest_ticker(p))
                for p in self.products
                if rec.listed("instruments", p.symbol)
            ]
            return json_response({"result": "success", "tickers": items, "serverTime": now})
        if path.startswith(f"{root}/tickers/"):
            sym = path.rsplit("/", 1)[1].upper()
            p = self.by_symbol.get(sym)
            if p is None:
                raise HttpError(404, "notFound")
            return json_response(
                {"result": "success", "ticker": self.rest_ticker(p), "serverTime": now}
            )
        raise HttpError(404, "notFound")

    @staticmethod
    def instrument(p: Product) -> dict[str, Any]:
        tick: float | int = p.step if p.pp == 0 else p.tick
        rec: dict[str, Any] = {"symbol": p.symbol, "type": p.type}
        if p.underlying:
            rec["underlying"] = p.underlying
        if p.last_trading:
            rec["lastTradingTime"] = p.last_trading
        rec.update(
            {
                "tickSize": tick,
                "contractSize": 1,
                "tradeable": True,
                "impactMidSize": 1,
                "maxPositionSize": 1000000.0,
                "openingDate": "2022-03-22T13:15:36Z",
                "marginLevels": (
                    [{"contracts": 0, "initialMargin": 0.02, "maintenanceMargin": 0.01}]
                    if p.type == "futures_inverse"
                    else [
                        {
                            "numNonContractUnits": 0.0,
                            "initialMargin": 0.01,
                            "maintenanceMargin": 0.005,
                        }
                    ]
                ),
                "contractValueTradePrecision": p.qp,
                "postOnly": False,
                "base": p.base,
                "quote": "USD",
                "pair": f"{p.base}:USD",
                "isExpired": False,
            }
        )
        if p.perpetual:
            rec["fundingRateCoefficient"] = 8
            rec["maxRelativeFundingRate"] = 0.005
        return rec

    @staticmethod
    def rest_ticker(p: Product) -> dict[str, Any]:
        tick = p.tick
        return {
            "symbol": p.symbol,
            "tag": "perpetual" if p.perpetual else "quarter",
            "pair": p.pair,
            "last": p.price,
            "lastTime": iso_ms(time.time_ns()),
            "lastSize": 1.0,
            "markPrice": p.price,
            "indexPrice": p.price,
            "bid": round(p.price - tick, 8),
            "bidSize": 1.0,
            "ask": round(p.price + tick, 8),
            "askSize": 1.0,
            "vol24h": 1000.0,
            "volumeQuote": round(1000.0 * p.price, 3),
            "open24h": p.price,
            "high24h": p.price,
            "low24h": p.price,
            "openInterest": 500.0,
            "fundingRate": 0.0 if not p.perpetual else 0.5,
            "fundingRatePrediction": 0.0 if not p.perpetual else 0.4,
            "suspended": False,
            "postOnly": False,
        }


class KrakenFuturesSession(Session):
    venue: KrakenFuturesVenue

    def __init__(self, venue: KrakenFuturesVenue, conn: SimConnection) -> None:
        super().__init__(venue, conn)
        self.prods: dict[str, _Prod] = {}
        self.streams: list[tuple[_Prod, int]] = []  # (product, 0 book / 1 trade / 2 ticker)
        self.tickers: list[_Prod] = []
        self.heartbeat_sub = False
        self.next_heartbeat = 0.0
        self.last_ping = time.monotonic()
        opts = venue.options
        self.heartbeat = opts.heartbeat_interval or 5.0
        self.ticker_interval = opts.ticker_interval
        # trade ids: a random UUID v4 prefix per connection and a counter (unique, cheap)
        self.uid_prefix = uuid4(self.rng)[:24]
        self.uid_count = int(self.rnd() * 2**40)

    def on_open(self) -> None:
        self.send('{"event":"info","version":1}', "info")

    def on_ping(self) -> None:
        self.last_ping = time.monotonic()

    def housekeep(self, now: float) -> None:
        if now - self.last_ping > self.venue.options.ping_timeout:
            self.conn.close(WSCloseCode.OK, b"no ping")
            return
        if self.heartbeat_sub and now >= self.next_heartbeat:
            self.next_heartbeat = now + self.heartbeat
            self.send(f'{{"feed":"heartbeat","time":{time.time_ns() // 1_000_000}}}', "heartbeat")

    def _error(self, message: str, event: str = "error") -> None:
        self.send(orjson.dumps({"event": event, "message": message}), event)

    def on_text(self, data: bytes) -> None:
        try:
            req = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error("Json Error")
            return
        if not isinstance(req, dict):
            self._error("Json Error")
            return
        event = req.get("event")
        if event == "challenge":
            self.send(orjson.dumps({"event": "challenge", "message": uuid4(self.rng)}), "challenge")
            return
        if event not in ("subscribe", "unsubscribe"):
            self._error("Json Error")
            return
        feed = req.get("feed")
        if feed in PRIVATE_FEEDS:
            self._error("Failed to subscribe to authenticated feed", "alert")
            return
        if feed not in PUBLIC_FEEDS:
            self._error("Couldn't subscribe to invalid feed", "alert")
            return
        if feed == "heartbeat":
            self.heartbeat_sub = event == "subscribe"
            self.next_heartbeat = time.monotonic() + self.heartbeat
            self.send(orjson.dumps({"event": f"{event}d", "feed": "heartbeat"}), f"{event}d")
            return
        ids = req.get("product_ids")
        if (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(i, str) and i.upper() in self.venue.by_symbol for i in ids)
        ):
            self._error("Invalid product id")
            return
        ids = [i.upper() for i in ids]
        self.send(
            orjson.dumps({"event": f"{event}d", "feed": req["feed"], "product_ids": ids}),
            f"{event}d",
        )
        if event == "unsubscribe":
            for i in ids:
                st = self.prods.get(i)
                if st is not None:
                    setattr(st, f"sub_{feed}", False)
            self._rebuild()
            return
        now_ms = time.time_ns() // 1_000_000
        snaps: list[bytes] = []
        stalled = self.server.instrument_stalled
        for i in ids:
            st = self.prods.get(i)
            if st is None:
                st = self.prods[i] = _Prod(self.venue.by_symbol[i], self.rnd)
            setattr(st, f"sub_{feed}", True)
            if stalled(i) or stalled(f"channel:{feed}"):
                continue  # acknowledged, but a stalled product sends nothing, not even a snapshot
            if feed == "ticker":
                snaps.append(self._ticker(st, now_ms).encode())
                st.next_ticker = time.monotonic() + self.ticker_interval
            elif feed == "trade":
                while len(st.recent) < SNAPSHOT_TRADES:
                    self._trade(st, now_ms - 1000 * (SNAPSHOT_TRADES - len(st.recent)))
                trades = ",".join(reversed(st.recent))  # newest first
                snaps.append(
                    f'{{"feed":"trade_snapshot","product_id":"{i}","trades":[{trades}]}}'.encode()
                )
            else:
                bids, asks = st.book.ladders()
                snaps.append(
                    f'{{"feed":"book_snapshot","product_id":"{i}","timestamp":{now_ms},"seq":{st.book_seq},'
                    f'"tickSize":null,"bids":[{bids}],"asks":[{asks}]}}'.encode()
                )
        kind = {"ticker": "ticker", "trade": "trade", "book": "book"}[feed]
        self.conn.write_data(snaps)
        self.sent[kind] += len(snaps)
        self._rebuild()

    def _rebuild(self) -> None:
        streams: list[tuple[_Prod, int]] = []
        tickers = []
        for st in self.prods.values():
            if st.sub_book:
                streams.append((st, 0))
            if st.sub_trade:
                streams.append((st, 1))
            if st.sub_ticker:
                if self.ticker_interval > 0:
                    tickers.append(st)
                else:
                    streams.append((st, 2))
        self.streams, self.tickers = streams, tickers

    def weight(self) -> int:
        return len(self.streams) + len(self.tickers)

    def subscription_count(self) -> int:
        return sum(st.sub_book + st.sub_trade + st.sub_ticker for st in self.prods.values())

    def _trade(self, st: _Prod, now_ms: int) -> str:
        rnd = self.rnd
        p = st.product
        buy = rnd() < 0.5
        price = st.book.asks[0] if buy else st.book.bids[-1]
        q = st.book.qty()
        st.trade_seq += 1
        st.volume += q
        st.last = price
        kind = "fill" if rnd() < 0.97 else ("liquidation" if rnd() < 0.7 else "block")
        msg = _TRADE % (
            p.symbol,
            self._uid(),
            "buy" if buy else "sell",
            kind,
            st.trade_seq,
            now_ms,
            trim(q, p.qp),
            trim(price, p.pp),
        )
        st.recent.append(msg)
        return msg

    def _ticker(self, st: _Prod, now_ms: int) -> str:
        p = st.product
        book = st.book
        b, a = book.bids[-1], book.asks[0]
        pp, qp = p.pp, p.qp
        rnd = self.rnd
        scale = 10**pp
        funding = ""
        if p.perpetual:
            hour = 3_600_000
            funding = (
                f'"funding_rate":{rnd() * 2 - 1:.12g},"funding_rate_prediction":{rnd() * 2 - 1:.12g},'
                f'"relative_funding_rate":{(rnd() - 0.5) * 4e-5:.12g},'
                f'"relative_funding_rate_prediction":{(rnd() - 0.5) * 4e-5:.12g},'
                f'"next_funding_rate_time":{(now_ms // hour + 1) * hour},'
            )
        maturity = 0
        dtm = 0
        if p.last_trading:
            maturity = calendar.timegm(time.strptime(p.last_trading, "%Y-%m-%dT%H:%M:%SZ")) * 1000
            dtm = max(0, (maturity - now_ms) // 86_400_000)
        mark = (b + a) / 2 / scale
        return (
            f'{{"time":{now_ms},"product_id":"{p.symbol}",{funding}"feed":"ticker",'
            f'"bid":{trim(b, pp)},"ask":{trim(a, pp)},"bid_size":{trim(book.levels[True, b], qp)},'
            f'"ask_size":{trim(book.levels[False, a], qp)},"volume":{trim(st.volume, qp)},"dtm":{dtm},'
            f'"leverage":"50x","index":{mark:.8g},"premium":0.0,"last":{trim(st.last, pp)},'
            f'"change":{rnd() * 4 - 2:.4g},"suspended":false,'
            f'"tag":"{"perpetual" if p.perpetual else "quarter"}","pair":"{p.pair}",'
            f'"openInterest":{trim(st.volume // 2 + 1, qp)},"markPrice":{mark:.10g},'
            f'"maturityTime":{maturity},"post_only":false,"volumeQuote":{st.volume / 10**qp * mark:.3f}}}'
        )

    def _uid(self) -> str:
        self.uid_count += 1
        return f"{self.uid_prefix}{self.uid_count & 0xFFFFFFFFFFFF:012x}"

    def generate(self, n: int, out: list[bytes]) -> None:
        now_ms = time.time_ns() // 1_000_000
        stalled = self.server.instrument_stalled if self.server.instrument_stalls else None
        n_ticker = n_trade = n_book = 0
        ap = out.append
        if self.tickers:
            mono = time.monotonic()
            for st in self.tickers:
                if mono >= st.next_ticker and not (
                    stalled and (stalled(st.product.symbol) or stalled("channel:ticker"))
                ):
                    st.next_ticker = mono + self.ticker_interval
                    ap(self._ticker(st, now_ms).encode())
                    n_ticker += 1
        streams = self.streams
        count = len(streams)
        rnd = self.rnd
        attempts = 0
        while count and n_ticker + n_trade + n_book < n and attempts < 2 * n + 8:
            attempts += 1
            st, ch = streams[int(rnd() * count)]
            p = st.product
            if stalled and (stalled(p.symbol) or stalled(_CHANNEL_KEYS[ch])):
                continue
            if ch == 1:
                ap(self._trade(st, now_ms).encode())
                n_trade += 1
            elif ch == 0:
                bid, price, q = st.book.step()
                st.book_seq += 1
                ap(
                    (
                        _DELTA
                        % (
                            p.symbol,
                            "buy" if bid else "sell",
                            st.book_seq,
                            trim(price, p.pp),
                            trim(q, p.qp),
                            now_ms,
                        )
                    ).encode()
                )
                n_book += 1
            else:
                ap(self._ticker(st, now_ms).encode())
                n_ticker += 1
        sent = self.sent
        sent["ticker"] += n_ticker
        sent["trade"] += n_trade
        sent["book"] += n_book
