"""Kraken spot WebSocket v2 and REST ``AssetPairs`` (protocol sheet ``kraken.md``).

WebSocket ``/v2``: ``status`` on connect; ``subscribe``/``unsubscribe`` for
``ticker`` (``event_trigger`` ``trades`` or ``bbo``), ``trade``, ``book``
(depth 10/25/100/500/1000, snapshot then updates with the CRC32 of the book
this module keeps) and ``instrument``; one ack per symbol; errors for v1
names and unknown symbols; ``heartbeat`` once a second when nothing else was
sent; ``{"method":"ping"}`` answered with ``pong``. Numbers are JSON numbers
with trailing zeros trimmed, so a checksum must be computed with the pair's
precisions (``pair_decimals``/``lot_decimals`` from REST, or the
``instrument`` channel), never from the wire text.

REST ``GET /0/public/AssetPairs`` (``pair=`` filter) lists the universe.
"""

from __future__ import annotations

import bisect
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ssmd.sim._fmt import iso_us, trim
from ssmd.sim.http import HttpError, Request, Response, json_response
from ssmd.sim.server import Session, SimConnection, Venue

__all__ = ["KrakenVenue", "L2Book", "Pair"]

DEPTHS = (10, 25, 100, 500, 1000)
_POOL = 1024
TRADE_SNAPSHOT = 50


@dataclass(frozen=True)
class Pair:
    symbol: str  # v2 name, BTC/USD
    key: str  # REST key, XXBTZUSD
    altname: str
    wsname: str  # v1 name, XBT/USD
    base: str  # REST asset id
    quote: str
    pp: int  # pair_decimals (price precision)
    qp: int  # lot_decimals (qty precision)
    price: float

    @property
    def base_v2(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote_v2(self) -> str:
        return self.symbol.split("/")[1]


_PAIRS = [
    Pair("BTC/USD", "XXBTZUSD", "XBTUSD", "XBT/USD", "XXBT", "ZUSD", 1, 8, 84000.0),
    Pair("ETH/USD", "XETHZUSD", "ETHUSD", "ETH/USD", "XETH", "ZUSD", 2, 8, 3200.0),
    Pair("SOL/USD", "SOLUSD", "SOLUSD", "SOL/USD", "SOL", "ZUSD", 2, 8, 180.0),
    Pair("XRP/USD", "XXRPZUSD", "XRPUSD", "XRP/USD", "XXRP", "ZUSD", 5, 8, 2.2),
    Pair("DOGE/USD", "XDGUSD", "XDGUSD", "XDG/USD", "XXDG", "ZUSD", 7, 8, 0.17),
    Pair("ADA/USD", "ADAUSD", "ADAUSD", "ADA/USD", "ADA", "ZUSD", 6, 8, 0.7),
    Pair("DOT/USD", "DOTUSD", "DOTUSD", "DOT/USD", "DOT", "ZUSD", 4, 8, 4.1),
    Pair("LTC/USD", "XLTCZUSD", "LTCUSD", "LTC/USD", "XLTC", "ZUSD", 2, 8, 88.0),
    Pair("LINK/USD", "LINKUSD", "LINKUSD", "LINK/USD", "LINK", "ZUSD", 5, 8, 14.5),
    Pair("AVAX/USD", "AVAXUSD", "AVAXUSD", "AVAX/USD", "AVAX", "ZUSD", 2, 8, 21.0),
    Pair("ATOM/USD", "ATOMUSD", "ATOMUSD", "ATOM/USD", "ATOM", "ZUSD", 4, 8, 4.6),
    Pair("XMR/USD", "XXMRZUSD", "XMRUSD", "XMR/USD", "XXMR", "ZUSD", 2, 8, 210.0),
    Pair("BCH/USD", "BCHUSD", "BCHUSD", "BCH/USD", "BCH", "ZUSD", 2, 8, 340.0),
    Pair("ALGO/USD", "ALGOUSD", "ALGOUSD", "ALGO/USD", "ALGO", "ZUSD", 5, 8, 0.2),
    Pair("POL/USD", "POLUSD", "POLUSD", "POL/USD", "POL", "ZUSD", 4, 8, 0.23),
    Pair("USDT/USD", "USDTZUSD", "USDTZUSD", "USDT/USD", "USDT", "ZUSD", 5, 2, 1.0),
    Pair("USDC/USD", "USDCUSD", "USDCUSD", "USDC/USD", "USDC", "ZUSD", 5, 2, 1.0),
    Pair("BTC/EUR", "XXBTZEUR", "XBTEUR", "XBT/EUR", "XXBT", "ZEUR", 1, 8, 77000.0),
    Pair("ETH/EUR", "XETHZEUR", "ETHEUR", "ETH/EUR", "XETH", "ZEUR", 2, 8, 2950.0),
    Pair("SOL/EUR", "SOLEUR", "SOLEUR", "SOL/EUR", "SOL", "ZEUR", 2, 8, 165.0),
    Pair("ETH/BTC", "XETHXXBT", "ETHXBT", "ETH/XBT", "XETH", "XXBT", 5, 8, 0.038),
]

_V1_NAMES = {"BTC": "XBT", "DOGE": "XDG"}


def _synthetic_pair(symbol: str) -> Pair:
    base, _, quote = symbol.partition("/")
    v1 = f"{_V1_NAMES.get(base, base)}/{_V1_NAMES.get(quote, quote)}"
    alt = v1.replace("/", "")
    return Pair(
        symbol, alt, alt, v1, base, quote, 4, 8, 1.0 + (zlib.crc32(symbol.encode()) % 1000) / 100
    )


def _universe(instruments: Sequence[str] | int | None) -> list[Pair]:
    if instruments is None:
        return list(_PAIRS)
    if isinstance(instruments, int):
        extra = [_synthetic_pair(f"SIM{i}/USD") for i in range(max(0, instruments - len(_PAIRS)))]
        return (list(_PAIRS) + extra)[:instruments]
    known = {p.symbol: p for p in _PAIRS}
    return [known.get(s) or _synthetic_pair(s) for s in dict.fromkeys(instruments)]


class L2Book:
    """A Kraken L2 book of exactly ``depth`` levels a side, on integer ticks.

    Updates follow the wire rules a client applies: levels in order, ``qty``
    the new total (0 deletes), then truncate to depth (no delete is sent for
    a level pushed out). Every level caches its wire text and its checksum
    text (price and qty digits at the pair's precisions with leading zeros
    removed, which is ``str`` of the scaled integers).
    """

    __slots__ = (
        "ac",
        "aq",
        "asks",
        "aw",
        "bc",
        "bids",
        "bq",
        "bw",
        "depth",
        "pool",
        "pp",
        "ptxt",
        "qmax",
        "qp",
        "qtxt",
        "rnd",
        "unit",
    )

    def __init__(self, rnd: Any, pair: Pair, depth: int) -> None:
        self.rnd = rnd
        self.pp, self.qp, self.depth = pair.pp, pair.qp, depth
        scale = 10**pair.qp
        self.qmax = max(10, int(20000 / max(pair.price, 1e-9) * scale))
        self.unit = 10 ** max(0, pair.qp - 2)
        self.ptxt = _Memo(pair.pp)
        self.qtxt: dict[int, str] = {}  # price -> qty text of that level
        #: quantities drawn once with their wire texts (a draw is an index)
        self.pool = [(q, trim(q, pair.qp)) for q in (self.qty() for _ in range(_POOL))]
        mid = max(depth * 4 + 10, round(pair.price * 10**pair.pp))
        self.bids: list[int] = []  # ascending: best bid last
        self.asks: list[int] = []  # ascending: best ask first
        self.bq: dict[int, int] = {}
        self.aq: dict[int, int] = {}
        self.bw: dict[int, str] = {}  # wire text of a level
        self.aw: dict[int, str] = {}
        self.bc: dict[int, str] = {}  # checksum text of a level
        self.ac: dict[int, str] = {}
        p = mid
        for _ in range(depth):
            p -= 1 + int(rnd() * 3)
            if p <= 0:
                break
            self._set(True, p, self.qty())
        p = mid
        for _ in range(depth):
            p += 1 + int(rnd() * 3)
            self._set(False, p, self.qty())

    def qty(self) -> int:
        q = int(self.rnd() ** 2 * self.qmax) + 1
        if self.rnd() < 0.3:  # round lots: trailing zeros the wire trims
            q = max(self.unit, q - q % self.unit)
        return q

    def draw(self) -> tuple[int, str]:
        """A random quantity and its wire text."""
        return self.pool[int(self.rnd() * _POOL)]

    def _set(self, bid: bool, p: int, q: int, qt: str = "") -> None:
        if bid:
            levels, qty, wire, ck = self.bids, self.bq, self.bw, self.bc
        else:
            levels, qty, wire, ck = self.asks, self.aq, self.aw, self.ac
        if p not in qty:
            bisect.insort(levels, p)
        qty[p] = q
        qt = qt or trim(q, self.qp)
        self.qtxt[p] = qt
        wire[p] = f'{{"price":{self.ptxt[p]},"qty":{qt}}}'
        ck[p] = f"{p}{q}"

    def _del(self, bid: bool, p: int) -> None:
        if bid:
            levels, qty, wire, ck = self.bids, self.bq, self.bw, self.bc
        else:
            levels, qty, wire, ck = self.asks, self.aq, self.aw, self.ac
        levels.pop(bisect.bisect_left(levels, p))
        del qty[p], wire[p], ck[p]

    def _truncate(self) -> None:
        while len(self.bids) > self.depth:
            self._del(True, self.bids[0])
        while len(self.asks) > self.depth:
            self._del(False, self.asks[-1])

    def set_depth(self, depth: int) -> None:
        """Grow (worse levels appended) or shrink the book to ``depth`` levels a side."""
        self.depth = depth
        while len(self.bids) < depth and self.bids and self.bids[0] > 3:
            self._set(True, self.bids[0] - 1 - int(self.rnd() * 2), self.qty())
        while len(self.asks) < depth:
            self._set(False, self.asks[-1] + 1 + int(self.rnd() * 2), self.qty())
        self._truncate()

    def top(self) -> tuple[int, int, int, int]:
        b, a = self.bids[-1], self.asks[0]
        return b, self.bq[b], a, self.aq[a]

    def top_text(self) -> str:
        """``"bid":…,"bid_qty":…,"ask":…,"ask_qty":…`` of a ticker."""
        b, a = self.bids[-1], self.asks[0]
        pt, qt = self.ptxt, self.qtxt
        return f'"bid":{pt[b]},"bid_qty":{qt[b]},"ask":{pt[a]},"ask_qty":{qt[a]}'

    def checksum(self) -> int:
        ac, bc = self.ac, self.bc
        s = "".join([ac[p] for p in self.asks[:10]] + [bc[p] for p in self.bids[:-11:-1]])
        return zlib.crc32(s.encode()) & 0xFFFFFFFF

    def levels_json(self) -> tuple[str, str]:
        """Snapshot ladders: bids best first, asks best first."""
        bw, aw = self.bw, self.aw
        return ",".join([bw[p] for p in reversed(self.bids)]), ",".join([aw[p] for p in self.asks])

    def step(self, top: bool = False) -> tuple[str, str]:
        """One random change: the changed levels' wire texts (bids, asks)."""
        rnd = self.rnd
        bid = rnd() < 0.5
        levels = self.bids if bid else self.asks
        wire = self.bw if bid else self.aw
        n = len(levels)
        r = 0.0 if top else rnd()
        spread = self.asks[0] - self.bids[-1]
        if spread > 6 and not top:
            r = 0.9  # a wide spread fills in
        text = ""
        if 0.55 <= r < 0.8 and n > 2:
            i = int(rnd() ** 2 * n)
            p = levels[n - 1 - i] if bid else levels[i]
            gap = 1 + int(rnd() * 3)
            new = levels[0] - gap if bid else levels[-1] + gap
            if new > 0:
                self._del(bid, p)
                self._set(bid, new, *self.draw())
                text = f'{{"price":{self.ptxt[p]},"qty":0}},{wire[new]}'
            else:
                r = 0.0
        elif r >= 0.8:
            p2 = self._free_price(bid, spread)
            if p2 is not None:
                self._set(bid, p2, *self.draw())
                text = wire[p2]
                self._truncate()
            else:
                r = 0.0
        if not text:
            i = 0 if top else int(rnd() ** 2 * n)
            p = levels[n - 1 - i] if bid else levels[i]
            self._set(bid, p, *self.draw())
            text = wire[p]
        return (text, "") if bid else ("", text)

    def _free_price(self, bid: bool, spread: int) -> int | None:
        rnd = self.rnd
        if spread > 1:
            off = 1 + int(rnd() * min(3, spread - 1))
            return self.bids[-1] + off if bid else self.asks[0] - off
        levels = self.bids if bid else self.asks
        n = len(levels)
        for _ in range(4):
            j = int(rnd() * (n - 1))
            lo, hi = levels[j], levels[j + 1]
            if hi - lo > 1:
                return lo + 1 + int(rnd() * (hi - lo - 1))
        return None


class _Memo(dict[int, str]):
    """Scaled integer -> trimmed text, computed once (prices repeat a lot)."""

    def __init__(self, decimals: int) -> None:
        super().__init__()
        self.decimals = decimals

    def __missing__(self, key: int) -> str:
        if len(self) > 200_000:
            self.clear()
        text = self[key] = trim(key, self.decimals)
        return text


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


_PCT = _Memo(2)
#: stall keys of whole channels (SimServer.inject("stall", channel=…)), by stream kind
_CHANNEL_KEYS = ("channel:book", "channel:trade", "channel:ticker")
_BOOK = '{"channel":"book","type":"%s","data":[{"symbol":"%s","bids":[%s],"asks":[%s],"checksum":%d,"timestamp":"%s"}]}'
_TICKER = '{"channel":"ticker","type":"%s","data":[{"symbol":"%s",%s,%s,"timestamp":"%s"}]}'
_TRADE = (
    '{"symbol":"%s","side":"%s","price":%s,"qty":%s,"ord_type":"%s","trade_id":%d,"timestamp":"%s"}'
)


class KrakenVenue(Venue):
    name = "kraken"
    ws_path = "/v2"
    rest_path = "/0"

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.pairs = _universe(instruments)
        self.by_symbol = {p.symbol: p for p in self.pairs}

    def instrument_ids(self) -> list[str]:
        return [p.symbol for p in self.pairs]

    def session(self, conn: SimConnection) -> Session:
        return KrakenSession(self, conn)

    def rest_error(
        self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        text = {404: "EGeneral:Unknown method", 429: "EGeneral:Too many requests"}.get(
            status, f"EGeneral:Invalid arguments:{message}"
        )
        return json_response(
            {"error": [text], "result": {}} if status != 429 else {"error": [text]}, status, headers
        )

    def rest(self, req: Request) -> Response:
        if req.path.rstrip("/") != "/0/public/AssetPairs":
            raise HttpError(404, req.path)
        wanted = req.args("pair")
        pairs = [p for p in self.pairs if self.records.listed("AssetPairs", p.key)]
        if wanted:
            index = {}
            for p in pairs:
                for name in (p.key, p.altname, p.wsname, p.symbol):
                    index[name.upper()] = p
            chosen = [index.get(w.upper()) for w in wanted]
            if any(c is None for c in chosen):
                return json_response({"error": ["EQuery:Unknown asset pair"]})
            pairs = [c for c in dict.fromkeys(chosen) if c is not None]
        result = {
            p.key: self.records.record("AssetPairs", p.key, self.asset_pair(p)) for p in pairs
        }
        return json_response({"error": [], "result": result})

    @staticmethod
    def asset_pair(p: Pair) -> dict[str, Any]:
        tick = trim(1, p.pp).rstrip("0").rstrip(".") if p.pp else "1"
        ordermin = trim(max(1, round(5 / max(p.price, 1e-9) * 10**p.qp)), p.qp)
        return {
            "altname": p.altname,
            "wsname": p.wsname,
            "aclass_base": "currency",
            "base": p.base,
            "aclass_quote": "currency",
            "quote": p.quote,
            "lot": "unit",
            "cost_decimals": 5,
            "pair_decimals": p.pp,
            "lot_decimals": p.qp,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            "fees": [],
            "fees_maker": [],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": ordermin,
            "costmin": "0.5",
            "tick_size": tick,
            "status": "online",
            "execution_venue": "international",
        }

    def instrument_snapshot(self) -> dict[str, Any]:
        assets: dict[str, dict[str, Any]] = {}
        pairs = []
        for p in self.pairs:
            for a, prec in ((p.base_v2, p.qp), (p.quote_v2, 4)):
                assets.setdefault(
                    a,
                    {
                        "id": a,
                        "status": "enabled",
                        "precision": max(prec, 4),
                        "precision_display": min(prec, 5),
                        "borrowable": False,
                        "collateral_value": 0.0,
                        "margin_rate": 0.0,
                    },
                )
            inc = float(f"1e-{p.pp}")
            pairs.append(
                {
                    "symbol": p.symbol,
                    "base": p.base_v2,
                    "quote": p.quote_v2,
                    "status": "online",
                    "qty_precision": p.qp,
                    "qty_increment": float(f"1e-{p.qp}"),
                    "price_precision": p.pp,
                    "cost_precision": 5,
                    "marginable": False,
                    "has_index": True,
                    "cost_min": 0.5,
                    "tick_size": inc,
                    "price_increment": inc,
                    "qty_min": float(f"1e-{p.qp}"),
                }
            )
        return {"assets": list(assets.values()), "pairs": pairs}


def _now_iso() -> str:
    return iso_us(time.time_ns())


class KrakenSession(Session):
    venue: KrakenVenue

    def __init__(self, venue: KrakenVenue, conn: SimConnection) -> None:
        super().__init__(venue, conn)
        self.syms: dict[str, _Sym] = {}
        self.streams: list[tuple[_Sym, int]] = []  # (symbol, 0 book / 1 trade / 2 ticker)
        self.subscribed_any = False
        self.instrument_sub = False
        opts = venue.options
        self.heartbeat = opts.heartbeat_interval or 1.0

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
        obj["time_out"] = _now_iso()
        self.send(orjson.dumps(obj), kind)

    def on_text(self, data: bytes) -> None:
        time_in = _now_iso()
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
        ts = _now_iso()
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
                    self._trade(st, ts)
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

    def _trade(self, st: _Sym, ts: str) -> str:
        rnd = self.rnd
        buy = rnd() < 0.5
        book = st.book
        b, _, a, _ = book.top()
        p = a if buy else b
        ptxt = book.ptxt[p]
        side = "buy" if buy else "sell"
        items = []
        for _ in range(1 + (rnd() < 0.15) + (rnd() < 0.05)):
            q, qt = book.draw()
            st.trade_id += 1
            st.trades += 1
            st.volume += q
            st.vwap_num += p * q
            item = _TRADE % (
                st.pair.symbol,
                side,
                ptxt,
                qt,
                "market" if rnd() < 0.4 else "limit",
                st.trade_id,
                ts,
            )
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
        ts = _now_iso()
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
                msg = trade(st, ts)
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
