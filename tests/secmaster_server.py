"""A local HTTP server speaking the venues' secmaster REST endpoints, for tests and benches.

Pages are shaped like the venues' real responses (``shared/protocols/*.md``
§5): Kalshi ``/series``, ``/series/fee_changes``, ``/events``, ``/markets``
with ``cursor`` pagination; Kraken ``/0/public/AssetPairs`` and Futures
``/derivatives/api/v3/instruments`` and ``/tickers``; Polymarket Gamma
``/markets/keyset`` with ``after_cursor``/``next_cursor``. The venues' data
are plain dicts the tests change between syncs. ``HttpServer.inject`` queues
raw responses (429 with Retry-After, 500, HTML pages) for the next requests
to a path; ``HttpServer.hits`` records every request with its time.

Used by ``tests/unit/secmaster`` and ``benches/python/bench_secmaster.py``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from ssmd.secmaster.config import SecmasterSettings
from ssmd.secmaster.db import connect

KALSHI = "/trade-api/v2"
KRAKEN = "/kraken/0"
FUTURES = "/futures/derivatives/api/v3"
GAMMA = "/gamma"

CATEGORIES = ("Economics", "Politics", "Crypto", "Sports", "Climate and Weather")


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]

    def arg(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return default

    def args(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(obj), {"Content-Type": "application/json"})


HTML_ERROR = Response(
    200,
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>",
    {"Content-Type": "text/html; charset=UTF-8"},
)


def too_many(retry_after: str = "1") -> Response:
    return Response(
        429,
        b'{"error":"too many requests"}',
        {"Retry-After": retry_after, "Content-Type": "application/json"},
    )


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


class HttpServer:
    """HTTP/1.1 with keep-alive on 127.0.0.1, GET only, routes by path."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[Request], Response]] = {}
        self.hits: list[tuple[float, str, int]] = []  # (monotonic time, path?query, status)
        self._inject: dict[str, list[Response]] = {}
        self._server: asyncio.base_events.Server | None = None
        self.url = ""

    def inject(self, path: str, *responses: Response) -> None:
        """Answer the next requests to ``path`` with ``responses``, in order."""
        self._inject.setdefault(path, []).extend(responses)

    def hits_to(self, prefix: str) -> list[tuple[float, str, int]]:
        return [h for h in self.hits if h[1].startswith(prefix)]

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 20)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _respond(self, req: Request) -> Response:
        queued = self._inject.get(req.path)
        if queued:
            return queued.pop(0)
        handler = self.routes.get(req.path)
        if handler is None:
            return json_response({"error": f"no route {req.path}"}, 404)
        return handler(req)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
                }
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                parts = urlsplit(target)
                req = Request(method, parts.path, parse_qsl(parts.query, keep_blank_values=True))
                resp = self._respond(req)
                self.hits.append((time.monotonic(), target, resp.status))
                close = headers.get("connection", "").lower() == "close"
                out = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}"]
                out += [f"{k}: {v}" for k, v in resp.headers.items()]
                out.append(f"Content-Length: {len(resp.body)}")
                if close:
                    out.append("Connection: close")
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + resp.body)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


def _cursor(offset: int) -> str:
    return "CgsI" + base64.b64encode(str(offset).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(base64.b64decode(cursor[4:]).decode())


# -- Kalshi ----------------------------------------------------------------------------


def kalshi_series(i: int) -> dict[str, Any]:
    return {
        "ticker": f"KXS{i:04d}",
        "frequency": "daily",
        "title": f"Series number {i}",
        "category": CATEGORIES[i % len(CATEGORIES)],
        "tags": ["BTC"] if i % 2 else [],
        "settlement_sources": [{"name": "CF Benchmarks", "url": "https://www.cfbenchmarks.com/"}],
        "contract_url": "https://example.invalid/contract.pdf",
        "contract_terms_url": "https://example.invalid/terms.pdf",
        "fee_type": "quadratic",
        "fee_multiplier": 1,
        "additional_prohibitions": [],
        "volume_fp": f"{7083218 + i}.00",
    }


def kalshi_event(series: str, j: int) -> dict[str, Any]:
    return {
        "event_ticker": f"{series}-26JUL{j:02d}",
        "series_ticker": series,
        "title": f"{series} on Jul {j}, 2026?",
        "sub_title": f"On Jul {j}, 2026",
        "collateral_return_type": "",
        "mutually_exclusive": j % 2 == 0,
        "strike_date": "2026-07-19T21:00:00Z",
        "available_on_brokers": True,
        "product_metadata": {},
    }


def kalshi_market(event: str, k: int, status: str = "active") -> dict[str, Any]:
    strike = 118_000 + 500 * k
    return {
        "ticker": f"{event}-T{strike - 0.01:.2f}",
        "event_ticker": event,
        "market_type": "binary",
        "yes_sub_title": f"${strike:,} or above",
        "no_sub_title": f"${strike:,} or above",
        "created_time": "2026-07-18T21:01:12.331402Z",
        "updated_time": "2026-07-18T21:01:12.331402Z",
        "open_time": "2026-07-19T20:00:00Z",
        "close_time": "2026-07-19T21:00:00Z",
        "latest_expiration_time": "2026-07-26T21:00:00Z",
        "settlement_timer_seconds": 60,
        "status": status,
        "notional_value_dollars": "1.0000",
        "yes_bid_dollars": "0.4100",
        "yes_ask_dollars": "0.4300",
        "no_bid_dollars": "0.5700",
        "no_ask_dollars": "0.5900",
        "yes_bid_size_fp": "250.00",
        "yes_ask_size_fp": "120.00",
        "last_price_dollars": "0.4200",
        "previous_yes_bid_dollars": "0.3900",
        "previous_yes_ask_dollars": "0.4400",
        "previous_price_dollars": "0.4000",
        "volume_fp": "18240.00",
        "volume_24h_fp": "18240.00",
        "liquidity_dollars": "0.0000",
        "open_interest_fp": "9120.00",
        "result": "",
        "can_close_early": True,
        "fractional_trading_enabled": False,
        "expiration_value": "",
        "rules_primary": f"If the CF Benchmarks BRTI is ${strike:,} or above at 5pm EDT on Jul 19,"
        " 2026, then the market resolves to Yes.",
        "rules_secondary": "",
        "strike_type": "greater",
        "floor_strike": strike - 0.01,
        "price_level_structure": "linear_cent",
        "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
    }


#: REST status filter -> market status field values it selects
_STATUS = {
    "unopened": {"initialized"},
    "open": {"active"},
    "paused": {"inactive"},
    "closed": {"closed"},
    "settled": {"determined", "finalized", "amended", "disputed"},
}


class FakeKalshi:
    """Kalshi REST v2: ``series``/``events``/``markets`` dicts keyed by ticker."""

    def __init__(self, n_series: int = 5, events_per_series: int = 2, markets_per_event: int = 3):
        self.series = {s["ticker"]: s for s in map(kalshi_series, range(n_series))}
        self.events: dict[str, dict[str, Any]] = {}
        self.markets: dict[str, dict[str, Any]] = {}
        for st in self.series:
            for j in range(1, events_per_series + 1):
                ev = kalshi_event(st, j)
                self.events[ev["event_ticker"]] = ev
                for k in range(markets_per_event):
                    m = kalshi_market(ev["event_ticker"], k)
                    self.markets[m["ticker"]] = m
        self.fee_changes = [
            {
                "id": f"b7f0c3f2-0000-0000-0000-{i:012d}",
                "series_ticker": st,
                "fee_type": "quadratic_with_maker_fees",
                "fee_multiplier": 1,
                "scheduled_ts": f"2026-0{3 + i % 2}-01T00:00:00Z",
            }
            for i, st in enumerate(list(self.series)[:2] * 2)
        ]
        self.stuck_cursor = False
        self.extra_markets: list[Any] = []  # raw items appended to the first /markets page

    def add_market(self, rec: dict[str, Any]) -> None:
        self.markets[rec["ticker"]] = rec

    def register(self, server: HttpServer, prefix: str = KALSHI) -> None:
        server.routes[prefix + "/series"] = self._series
        server.routes[prefix + "/series/fee_changes"] = self._fees
        server.routes[prefix + "/events"] = self._events
        server.routes[prefix + "/markets"] = self._markets

    def _series(self, req: Request) -> Response:
        cat = req.arg("category")
        items = [s for s in self.series.values() if cat is None or s["category"] == cat]
        return json_response({"series": items})

    def _fees(self, req: Request) -> Response:
        return json_response({"series_fee_change_arr": self.fee_changes})

    def _page(self, req: Request, key: str, items: list[Any], default_limit: int) -> Response:
        limit = int(req.arg("limit") or default_limit)
        start = _offset(req.arg("cursor"))
        page = items[start : start + limit]
        end = start + limit
        if self.stuck_cursor and start > 0:
            cursor = req.arg("cursor") or ""
        else:
            cursor = _cursor(end) if end < len(items) else ""
        return json_response({"cursor": cursor, key: page})

    def _series_of(self, event_ticker: str) -> str | None:
        ev = self.events.get(event_ticker)
        return ev["series_ticker"] if ev else None

    def _events(self, req: Request) -> Response:
        items = list(self.events.values())
        if st := req.arg("series_ticker"):
            items = [e for e in items if e["series_ticker"] == st]
        if status := req.arg("status"):
            with_status = {
                m["event_ticker"]
                for m in self.markets.values()
                if m.get("status") in _STATUS[status]
            }
            items = [e for e in items if e["event_ticker"] in with_status]
        return self._page(req, "events", items, 200)

    def _markets(self, req: Request) -> Response:
        items: list[Any] = list(self.markets.values())
        if st := req.arg("series_ticker"):
            items = [m for m in items if self._series_of(m.get("event_ticker", "")) == st]
        if status := req.arg("status"):
            items = [m for m in items if m.get("status") in _STATUS[status]]
        resp = self._page(req, "markets", items, 100)
        if self.extra_markets and not req.arg("cursor"):
            body = orjson.loads(resp.body)
            body["markets"] = self.extra_markets + body["markets"]
            resp = json_response(body)
        return resp


# -- Kraken ----------------------------------------------------------------------------


def kraken_spot(i: int) -> tuple[str, dict[str, Any]]:
    if i == 0:
        base, wsbase, key = "XXBT", "XBT", "XXBTZUSD"
    else:
        base = wsbase = f"C{i:04d}"
        key = f"{base}USD"
    return key, {
        "altname": f"{wsbase}USD",
        "wsname": f"{wsbase}/USD",
        "aclass_base": "currency",
        "base": base,
        "aclass_quote": "currency",
        "quote": "ZUSD",
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": 1 if i == 0 else 4,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "leverage_buy": [2, 3, 4, 5],
        "leverage_sell": [2, 3, 4, 5],
        "fees": [],
        "fees_maker": [],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.00005",
        "costmin": "0.5",
        "tick_size": "0.1" if i == 0 else "0.0001",
        "status": "online",
        "execution_venue": "international",
        "long_position_limit": 350,
        "short_position_limit": 250,
    }


def kraken_perpetual(i: int) -> dict[str, Any]:
    sym = "XBT" if i == 0 else f"C{i:03d}"
    return {
        "symbol": f"PF_{sym}USD",
        "type": "flexible_futures",
        "tickSize": 1 if i == 0 else 0.001,
        "contractSize": 1,
        "tradeable": True,
        "impactMidSize": 0.08,
        "maxPositionSize": 1200.0,
        "openingDate": "2022-03-22T13:15:36Z",
        "marginLevels": [
            {"numNonContractUnits": 0.0, "initialMargin": 0.01, "maintenanceMargin": 0.005}
        ],
        "fundingRateCoefficient": 8,
        "maxRelativeFundingRate": 0.005,
        "contractValueTradePrecision": 4,
        "postOnly": False,
        "feeScheduleUid": "723888f7-0a8e-4183-8648-f920a22339e3",
        "mtf": True,
        "base": "BTC" if i == 0 else sym,
        "quote": "USD",
        "pair": f"{'BTC' if i == 0 else sym}:USD",
        "category": "Layer 1",
        "tradfi": False,
        "isExpired": False,
    }


DATED_FUTURE = {
    "symbol": "FF_XBTUSD_261225",
    "type": "flexible_futures",
    "lastTradingTime": "2026-12-25T08:00:00Z",
    "tickSize": 1,
    "contractSize": 1,
    "tradeable": True,
    "contractValueTradePrecision": 4,
    "base": "BTC",
    "quote": "USD",
    "pair": "BTC:USD",
    "isExpired": False,
}


class FakeKraken:
    """Kraken spot AssetPairs and Futures instruments/tickers."""

    def __init__(self, n_spot: int = 4, n_perp: int = 2) -> None:
        self.pairs = dict(map(kraken_spot, range(n_spot)))
        self.instruments: list[dict[str, Any]] = [
            *map(kraken_perpetual, range(n_perp)),
            DATED_FUTURE,
        ]
        self.suspended: set[str] = set()
        self.spot_error: list[str] = []

    def register(self, server: HttpServer, spot: str = KRAKEN, futures: str = FUTURES) -> None:
        server.routes[spot + "/public/AssetPairs"] = self._pairs
        server.routes[futures + "/instruments"] = self._instruments
        server.routes[futures + "/tickers"] = self._tickers

    def _pairs(self, req: Request) -> Response:
        if self.spot_error:
            return json_response({"error": self.spot_error, "result": {}})
        return json_response({"error": [], "result": self.pairs})

    def _instruments(self, req: Request) -> Response:
        return json_response(
            {
                "result": "success",
                "instruments": self.instruments,
                "serverTime": "2026-09-25T17:43:59.000Z",
            }
        )

    def _tickers(self, req: Request) -> Response:
        tickers = [
            {
                "symbol": ins["symbol"],
                "tag": "perpetual",
                "pair": ins.get("pair", ""),
                "last": 83997.0,
                "markPrice": 84004.11,
                "bid": 84001.0,
                "ask": 84002.0,
                "vol24h": 4237.2723,
                "openInterest": 2189.7813,
                "fundingRate": 0.912482213835,
                "suspended": ins["symbol"] in self.suspended,
                "postOnly": False,
            }
            for ins in self.instruments
        ]
        return json_response(
            {"result": "success", "serverTime": "2026-09-25T17:45:00.000Z", "tickers": tickers}
        )


# -- Polymarket ------------------------------------------------------------------------


def polymarket_market(i: int, closed: bool = False) -> dict[str, Any]:
    cond = f"0x{i:064x}"
    tok_yes = str(
        76043073756653678226373981964075571318267289248134717369284518995922789326425 + 2 * i
    )
    tok_no = str(
        31690934263385727664202099278545688007799199447969475608906331829650099442770 + 2 * i
    )
    return {
        "id": str(1031769 + i),
        "conditionId": cond,
        "questionID": f"0x{i + 7:064x}",
        "question": f"Will NVIDIA (NVDA) close above ${200 + i} end of January?",
        "slug": f"nvda-above-{200 + i}-on-january-30-2026",
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["0.115", "0.885"]',
        "clobTokenIds": f'["{tok_yes}", "{tok_no}"]',
        "active": True,
        "closed": closed,
        "archived": False,
        "acceptingOrders": not closed,
        "enableOrderBook": True,
        "negRisk": False,
        "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5,
        "startDate": "2026-01-01T00:00:00Z",
        "endDate": "2026-01-30T21:00:00Z",
        "volume": "48210.551204",
        "volumeNum": 48210.551204,
        "liquidity": "12044.3071",
        "liquidityNum": 12044.3071,
        "volume24hr": 1520.5,
        "bestBid": 0.11,
        "bestAsk": 0.12,
        "lastTradePrice": 0.115,
        "spread": 0.01,
        "oneDayPriceChange": -0.01,
        "updatedAt": "2026-01-20T10:00:00.123456Z",
        "events": [
            {
                "id": str(125819 + i // 10),
                "slug": "nvda-above-in-january-2026",
                "title": "Will NVIDIA (NVDA) close above ___ end of January?",
                "tags": [{"id": "100639", "label": "Finance", "slug": "finance"}],
                "volume": 120000.5,
            }
        ],
    }


class FakePolymarket:
    """Gamma ``/markets/keyset`` over ``markets`` (dict by condition id)."""

    def __init__(self, n: int = 5) -> None:
        self.markets = {m["conditionId"]: m for m in map(polymarket_market, range(n))}
        self.stuck_cursor = False
        self.extra: list[Any] = []  # raw items appended to the first page

    def register(self, server: HttpServer, prefix: str = GAMMA) -> None:
        server.routes[prefix + "/markets/keyset"] = self._keyset

    def _keyset(self, req: Request) -> Response:
        if req.arg("offset") is not None:
            return json_response({"error": "offset is not supported on keyset endpoints"}, 400)
        items: list[Any] = list(self.markets.values())
        ids = req.args("condition_ids")
        if ids:
            items = [m for m in items if m["conditionId"] in set(ids)]
        closed = req.arg("closed")
        if closed is not None:
            items = [m for m in items if m["closed"] == (closed == "true")]
        limit = min(int(req.arg("limit") or 100), 100)
        start = _offset(req.arg("after_cursor"))
        page = items[start : start + limit]
        if self.extra and start == 0:
            page = self.extra + page
        body: dict[str, Any] = {"markets": page}
        cursor = req.arg("after_cursor")
        if self.stuck_cursor and cursor:
            body["next_cursor"] = cursor  # the same cursor again
        elif start + limit < len(items):
            body["next_cursor"] = _cursor(start + limit)
        return json_response(body)


@dataclass
class Venues:
    """All three fakes on one server."""

    server: HttpServer
    kalshi: FakeKalshi
    kraken: FakeKraken
    polymarket: FakePolymarket

    @property
    def urls(self) -> dict[str, str]:
        u = self.server.url
        return {
            "kalshi": u + KALSHI,
            "kraken": u + KRAKEN,
            "kraken-futures": u + FUTURES,
            "polymarket": u + GAMMA,
        }


async def start_venues(
    kalshi: FakeKalshi | None = None,
    kraken: FakeKraken | None = None,
    polymarket: FakePolymarket | None = None,
) -> Venues:
    server = HttpServer()
    v = Venues(
        server, kalshi or FakeKalshi(), kraken or FakeKraken(), polymarket or FakePolymarket()
    )
    v.kalshi.register(server)
    v.kraken.register(server)
    v.polymarket.register(server)
    await server.start()
    return v


def make_settings(dsn: str | None, venues: Venues, attempts: int = 3) -> SecmasterSettings:
    """Settings pointing every venue at the local server, unthrottled."""
    rates: dict[str, float | None] = {v: 0.0 for v in venues.urls}
    s = SecmasterSettings.load(
        {}, database_url=dsn, urls=dict(venues.urls), rates=rates, attempts=attempts
    )
    return s


async def versions(dsn: str, table: str, key: str) -> dict[str, str]:
    """key -> xmin of every row: a row rewritten in any way gets a new xmin."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(f"SELECT {key} AS k, xmin::text AS x FROM {table}")
        return {r["k"]: r["x"] for r in rows}
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()
