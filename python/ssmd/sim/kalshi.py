"""Kalshi Trade API v2 WebSocket and REST (protocol sheet ``kalshi.md``).

WebSocket ``/trade-api/ws/v2``: the upgrade carries ``KALSHI-ACCESS-KEY``,
``-TIMESTAMP`` (ms) and ``-SIGNATURE`` (RSA-PSS SHA-256 of
``<ts>GET/trade-api/ws/v2``); with a public key configured a missing,
wrong or stale (more than ``kalshi_signature_skew`` seconds) signature gets
HTTP 401, without one every upgrade is accepted and a connection without
the key header counts as unauthenticated (``orderbook_delta`` → error 9).
Commands ``subscribe`` / ``unsubscribe`` / ``update_subscription``
(``add_markets``, ``delete_markets``, ``get_snapshot``) /
``list_subscriptions`` with ``id``; replies ``subscribed`` (one per
channel, its own ``sid``), ``ok``, ``unsubscribed`` and ``error`` with the
sheet's codes. Channels ``ticker`` (no ``seq``), ``trade``,
``orderbook_delta`` (``orderbook_snapshot`` then deltas) and
``market_lifecycle_v2`` (also ``event_lifecycle``), ``seq`` per ``sid``
from 1. The server sends a WebSocket Ping with payload ``heartbeat`` every
10 s. A reader too slow for its queue gets error 25 on every data
subscription, which is dropped.

REST ``/trade-api/v2``: ``/series`` (``category``; paged when ``limit`` is
given), ``/series/{ticker}``, ``/series/fee_changes``, ``/events`` and
``/markets`` (``cursor``, empty cursor = end, filters ``status``,
``series_ticker``, ``event_ticker``, ``tickers``), ``/events/{ticker}``,
``/markets/{ticker}``.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ssmd.errors import ConfigError
from ssmd.sim._fmt import fixed, iso_us, uuid4
from ssmd.sim.http import (
    HttpError,
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    json_response,
    page,
)
from ssmd.sim.server import Session, SimConnection, Venue

__all__ = ["KalshiVenue", "load_public_key", "verify_signature"]

WS_PATH = "/trade-api/ws/v2"
DATA_CHANNELS = ("ticker", "trade", "orderbook_delta", "market_lifecycle_v2")
PRIVATE_CHANNELS = (
    "fill",
    "market_positions",
    "user_orders",
    "order_group_updates",
    "communications",
    "multivariate_market_lifecycle",
)
STATUS_FILTERS = {
    "unopened": ("initialized",),
    "open": ("active",),
    "paused": ("inactive",),
    "closed": ("closed",),
    "settled": ("determined", "finalized"),
}
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

_SERIES = (
    ("KXBTCD", "Bitcoin price Above/below", "Crypto", "hourly", 84000.0, 250.0),
    ("KXETHD", "Ethereum price Above/below", "Crypto", "hourly", 3200.0, 20.0),
    ("INXD", "S&P 500 daily range", "Financials", "daily", 6400.0, 25.0),
    ("FED", "Fed funds rate", "Economics", "monthly", 3.5, 0.25),
    ("CPI", "CPI month over month", "Economics", "monthly", 0.2, 0.1),
    ("KXHIGHNY", "Highest temperature in NYC", "Climate and Weather", "daily", 48.0, 2.0),
    ("KXPRES", "Presidential election winner", "Politics", "custom", 0.0, 1.0),
    ("KXNFLGAME", "Pro football game winner", "Sports", "weekly", 0.0, 1.0),
)


def load_public_key(key: Any) -> Any:
    """A ``cryptography`` RSA public key from PEM bytes/text or a PEM file path.

    A private key is accepted too (its public half is used). Raises
    :class:`~ssmd.errors.ConfigError` for anything that is not an RSA key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    if isinstance(key, Path) or (isinstance(key, str) and not key.lstrip().startswith("-----")):
        try:
            data = Path(key).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read Kalshi public key {key}: {exc.strerror}") from None
    else:
        data = key.encode() if isinstance(key, str) else bytes(key)
    loaded: Any
    try:
        loaded = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            loaded = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError):
            raise ConfigError("Kalshi public key is not a PEM RSA key") from None
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ConfigError("Kalshi public key is not an RSA key")
    return loaded


def verify_signature(public_key: Any, timestamp: str, signature: str, path: str = WS_PATH) -> bool:
    """Whether ``signature`` (base64) is the RSA-PSS SHA-256 of ``<ts>GET<path>``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    msg = f"{timestamp}GET{path.split('?', 1)[0]}".encode()
    try:
        public_key.verify(
            raw,
            msg,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return False
    return True


@dataclass
class Market:
    ticker: str
    event: str
    series: str
    market_id: str
    status: str
    strike: float
    mid: int  # cents

    @property
    def active(self) -> bool:
        return self.status == "active"


def _universe(
    rng: Any, instruments: Sequence[str] | int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Market]]:
    series: dict[str, dict[str, Any]] = {}
    events: dict[str, dict[str, Any]] = {}
    markets: list[Market] = []

    def add_series(ticker: str, title: str, category: str, freq: str) -> None:
        series.setdefault(
            ticker,
            {
                "ticker": ticker,
                "frequency": freq,
                "title": title,
                "category": category,
                "tags": [ticker[2:5] if ticker.startswith("KX") else ticker[:3]],
                "settlement_sources": [
                    {"name": "Simulated source", "url": "https://example.invalid/"}
                ],
                "contract_url": "https://example.invalid/contract.pdf",
                "contract_terms_url": "https://example.invalid/terms.pdf",
                "fee_type": "quadratic",
                "fee_multiplier": 1,
                "additional_prohibitions": [],
            },
        )

    def add_event(ticker: str, series_ticker: str, title: str, n: int) -> None:
        events.setdefault(
            ticker,
            {
                "event_ticker": ticker,
                "series_ticker": series_ticker,
                "title": title,
                "sub_title": f"On {ticker.split('-')[-1]}",
                "collateral_return_type": "",
                "mutually_exclusive": series_ticker in ("KXPRES", "KXNFLGAME"),
                "strike_date": f"2026-12-{1 + n % 28:02d}T21:00:00Z",
                "available_on_brokers": True,
                "product_metadata": {},
            },
        )

    def new_market(
        ticker: str, event: str, series_ticker: str, status: str, strike: float
    ) -> Market:
        return Market(
            ticker, event, series_ticker, uuid4(rng), status, strike, 5 + int(rng.random() * 90)
        )

    if instruments is not None and not isinstance(instruments, int):
        for t in dict.fromkeys(instruments):
            ev = t.rsplit("-", 1)[0] if t.count("-") >= 2 else t
            ser = t.split("-", 1)[0]
            add_series(ser, f"{ser} series", "Simulated", "daily")
            add_event(ev, ser, f"{ev} event", len(events))
            markets.append(new_market(t, ev, ser, "active", 0.0))
        return list(series.values()), list(events.values()), markets
    total = 192 if instruments is None else instruments
    per_event = 8
    e = 0
    while len(markets) < total:
        ser, title, cat, freq, base, step = _SERIES[e % len(_SERIES)]
        add_series(ser, title, cat, freq)
        round_ = e // len(_SERIES)
        day = 25 - round_ % 25
        ev = (
            f"{ser}-26NOV{day:02d}{17 + round_ // 25:02d}"
            if freq != "custom"
            else f"{ser}-{28 + round_}"
        )
        add_event(ev, ser, f"{title} on Nov {day}, 2026?", e)
        # the third round of every other series is settled: the REST filters have something to do
        status = "finalized" if instruments is None and round_ == 2 and e % 2 == 0 else "active"
        for k in range(min(per_event, total - len(markets))):
            strike = round(base + (k - per_event / 2) * step, 2)
            suffix = f"T{strike - 0.01:.2f}" if base else f"S{k}"
            markets.append(new_market(f"{ev}-{suffix}", ev, ser, status, strike))
        e += 1
    return list(series.values()), list(events.values()), markets


class KalshiVenue(Venue):
    name = "kalshi"
    ws_path = WS_PATH
    rest_path = "/trade-api/v2"

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.series, self.events, self.markets = _universe(self.rng, instruments)
        self.by_ticker = {m.ticker: m for m in self.markets}
        self.active = [m for m in self.markets if m.active]
        self.public_key = server.kalshi_public_key

    def instrument_ids(self) -> list[str]:
        return [m.ticker for m in self.active]

    def session(self, conn: SimConnection) -> Session:
        return KalshiSession(self, conn)

    # -- auth ------------------------------------------------------------------

    def authorize(self, req: Request) -> Response | None:
        if self.public_key is None:
            return None
        key = req.headers.get("kalshi-access-key")
        ts = req.headers.get("kalshi-access-timestamp")
        sig = req.headers.get("kalshi-access-signature")
        if not key or not ts or not sig:
            return self.rest_error(401, "missing KALSHI-ACCESS-* headers")
        try:
            ts_ms = int(ts)
        except ValueError:
            return self.rest_error(401, "KALSHI-ACCESS-TIMESTAMP must be milliseconds")
        skew = abs(time.time() * 1000 - ts_ms) / 1000
        if skew > self.options.kalshi_signature_skew:
            return self.rest_error(401, f"timestamp outside the accepted window ({skew:.0f} s)")
        if not verify_signature(self.public_key, ts, sig, req.path):
            return self.rest_error(401, "invalid signature")
        return None

    # -- REST ------------------------------------------------------------------

    def rest_error(
        self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        code = {
            400: "bad_request",
            401: "authentication_error",
            404: "not_found",
            429: "too_many_requests",
        }.get(status, "error")
        return json_response({"error": {"code": code, "message": message}}, status, headers)

    def market_json(self, m: Market) -> dict[str, Any]:
        yes_bid = max(1, m.mid - 1)
        yes_ask = min(99, m.mid + 1)
        settled = m.status in ("determined", "finalized")
        return {
            "ticker": m.ticker,
            "event_ticker": m.event,
            "market_type": "binary",
            "yes_sub_title": f"{m.strike} or above" if m.strike else m.ticker.rsplit("-", 1)[1],
            "no_sub_title": f"{m.strike} or above" if m.strike else m.ticker.rsplit("-", 1)[1],
            "created_time": "2026-11-18T21:01:12.331402Z",
            "updated_time": "2026-11-18T21:01:12.331402Z",
            "open_time": "2026-11-19T20:00:00Z",
            "close_time": "2026-12-31T21:00:00Z",
            "latest_expiration_time": "2027-01-07T21:00:00Z",
            "settlement_timer_seconds": 60,
            "status": m.status,
            "notional_value_dollars": "1.0000",
            "yes_bid_dollars": fixed(yes_bid * 100, 4),
            "yes_ask_dollars": fixed(yes_ask * 100, 4),
            "no_bid_dollars": fixed((100 - yes_ask) * 100, 4),
            "no_ask_dollars": fixed((100 - yes_bid) * 100, 4),
            "yes_bid_size_fp": "250.00",
            "yes_ask_size_fp": "120.00",
            "last_price_dollars": fixed(m.mid * 100, 4),
            "volume_fp": "18240.00",
            "volume_24h_fp": "18240.00",
            "liquidity_dollars": "0.0000",
            "open_interest_fp": "9120.00",
            "result": ("yes" if m.mid >= 50 else "no") if settled else "",
            "can_close_early": True,
            "fractional_trading_enabled": False,
            "expiration_value": "",
            "rules_primary": f"If the outcome of {m.ticker} is Yes, the market resolves to Yes.",
            "rules_secondary": "",
            "strike_type": "greater" if m.strike else "custom",
            **({"floor_strike": m.strike} if m.strike else {}),
            "price_level_structure": "linear_cent",
            "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
        }

    def _markets(self, req: Request) -> list[Market]:
        listed = self.records.listed
        ms = [m for m in self.markets if listed("markets", m.ticker)]
        status = req.arg("status")
        if status:
            if status not in STATUS_FILTERS:
                raise HttpError(400, f"invalid status filter {status!r}")
            ms = [m for m in ms if m.status in STATUS_FILTERS[status]]
        for key, attr in (("series_ticker", "series"), ("event_ticker", "event")):
            value = req.arg(key)
            if value:
                ms = [m for m in ms if getattr(m, attr) == value]
        tickers = set(req.args("tickers"))
        if tickers:
            ms = [m for m in ms if m.ticker in tickers]
        return ms

    def _cursor_page(
        self, req: Request, items: Sequence[Any], default: int, hi: int
    ) -> tuple[list[Any], str]:
        limit = req.int_arg("limit", default, 1, hi)
        raw = req.arg("cursor")
        start = decode_cursor(raw) if raw else 0
        chunk, nxt = page(items, start, limit)
        return chunk, self.records.cursor(raw, encode_cursor(nxt) if nxt is not None else "") or ""

    def fee_changes(self, series_ticker: str | None = None) -> list[dict[str, Any]]:
        """Scheduled fee changes: every third series once, every sixth twice."""
        sers = [s for s in self.series if series_ticker in (None, s["ticker"])]
        return [
            {
                "id": f"00000000-0000-4000-8{n:03d}-{i:012d}",
                "series_ticker": s["ticker"],
                "fee_type": "quadratic_with_maker_fees",
                "fee_multiplier": n + 1,
                "scheduled_ts": f"2026-0{3 + n}-01T00:00:00Z",
            }
            for i, s in enumerate(sers)
            if i % 3 == 0
            for n in range(2 if i % 6 == 0 else 1)
        ]

    def _series_json(self, s: dict[str, Any]) -> dict[str, Any]:
        return self.records.record("series", s["ticker"], s)

    def _event_json(self, e: dict[str, Any]) -> dict[str, Any]:
        return self.records.record("events", e["event_ticker"], e)

    def _market_json(self, m: Market) -> dict[str, Any]:
        return self.records.record("markets", m.ticker, self.market_json(m))

    def rest(self, req: Request) -> Response:
        root = self.rest_path
        path = req.path.rstrip("/")
        if not path.startswith(root + "/"):
            raise HttpError(404, f"not found: {req.path}")
        rel = path[len(root) :]
        if rel == "/series":
            items = [
                self._series_json(s)
                for s in self.series
                if self.records.listed("series", s["ticker"])
            ]
            cat = req.arg("category")
            if cat:
                items = [s for s in items if s["category"].lower() == cat.lower()]
            if req.arg("limit") is None and req.arg("cursor") is None:
                return json_response({"series": items})
            chunk, cursor = self._cursor_page(req, items, 200, 1000)
            return json_response({"cursor": cursor, "series": chunk})
        if rel == "/series/fee_changes":
            return json_response(
                {"series_fee_change_arr": self.fee_changes(req.arg("series_ticker"))}
            )
        if rel.startswith("/series/"):
            tick = rel.split("/", 2)[2]
            found = next((s for s in self.series if s["ticker"] == tick), None)
            if found is None:
                raise HttpError(404, f"series {tick} not found")
            return json_response({"series": found})
        if rel == "/events":
            ms = self._markets(req)
            wanted = dict.fromkeys(m.event for m in ms)
            evs = [
                self._event_json(e)
                for e in self.events
                if e["event_ticker"] in wanted and self.records.listed("events", e["event_ticker"])
            ]
            chunk, cursor = self._cursor_page(req, evs, 200, 200)
            if req.bool_arg("with_nested_markets"):
                by_event: dict[str, list[dict[str, Any]]] = {}
                for m in ms:
                    by_event.setdefault(m.event, []).append(self._market_json(m))
                chunk = [{**e, "markets": by_event.get(e["event_ticker"], [])} for e in chunk]
            if not req.arg("cursor"):
                chunk = self.records.head("events", chunk)
            return json_response({"cursor": cursor, "events": chunk})
        if rel.startswith("/events/"):
            tick = rel.split("/", 2)[2]
            ev = next((e for e in self.events if e["event_ticker"] == tick), None)
            if ev is None:
                raise HttpError(404, f"event {tick} not found")
            nested = [self.market_json(m) for m in self.markets if m.event == tick]
            return json_response({"event": ev, "markets": nested})
        if rel == "/markets":
            chunk, cursor = self._cursor_page(req, self._markets(req), 100, 1000)
            items = [self._market_json(m) for m in chunk]
            if not req.arg("cursor"):
                items = self.records.head("markets", items)
            return json_response({"cursor": cursor, "markets": items})
        if rel.startswith("/markets/"):
            one = self.by_ticker.get(rel.split("/", 2)[2])
            if one is None:
                raise HttpError(404, "market not found")
            return json_response({"market": self.market_json(one)})
        raise HttpError(404, f"not found: {req.path}")


class _Book:
    """YES bids and NO bids in cents with sizes in hundredths; never crossed."""

    __slots__ = ("no", "yes")

    def __init__(self, mid: int, rnd: Any) -> None:
        self.yes = {p: 100 * (1 + int(rnd() ** 2 * 2000)) for p in range(max(1, mid - 6), mid)}
        self.no = {
            p: 100 * (1 + int(rnd() ** 2 * 2000)) for p in range(max(1, 99 - mid - 6), 99 - mid)
        }

    def delta(self, rnd: Any) -> tuple[str, int, int]:
        """(side, price cents, signed size change in hundredths)."""
        yes = rnd() < 0.5
        side, other = (self.yes, self.no) if yes else (self.no, self.yes)
        ceiling = 99 - max(other, default=0)  # highest price that does not cross
        if side and rnd() < 0.45:
            p = max(side) - int(rnd() ** 2 * min(len(side), 8))
            p = p if p in side else max(side)
            d = -min(side[p], 100 * (1 + int(rnd() * 500)))
            if rnd() < 0.3:
                d = -side[p]
        else:
            top = max(side, default=ceiling - 3)
            p = min(ceiling, max(1, top + 1 - int(rnd() * 5)))
            if p < 1:
                p = 1
            d = 100 * (1 + int(rnd() ** 2 * 1000))
        left = side.get(p, 0) + d
        if left > 0:
            side[p] = left
        else:
            side.pop(p, None)
        return ("yes" if yes else "no"), p, d

    def ladders(self) -> str:
        parts = []
        for key, side in (("yes_dollars_fp", self.yes), ("no_dollars_fp", self.no)):
            if side:
                levels = ",".join(
                    f'["{fixed(p * 100, 4)}","{fixed(s, 2)}"]' for p, s in sorted(side.items())
                )
                parts.append(f'"{key}":[{levels}]')
        return ",".join(parts)


class _MState:
    """A market's ticker state on one connection."""

    __slots__ = ("book", "market", "oi", "price", "volume")

    def __init__(self, market: Market, rnd: Any) -> None:
        self.market = market
        self.price = market.mid
        self.volume = 100 * int(1000 + rnd() * 900_000)
        self.oi = self.volume // 3
        self.book: _Book | None = None


@dataclass
class _Sub:
    sid: int
    channel: str
    markets: list[str] | None  # None: every market
    seq: int = 0


#: cents -> dollar string ("0.4500")
_DOL = [fixed(c * 100, 4) for c in range(101)]


def _fp(v: int) -> str:
    """Hundredths as a 2-decimal string (``-5400`` → ``-54.00``)."""
    if v < 0:
        return "-" + _fp(-v)
    return "%d.%02d" % divmod(v, 100)  # noqa: UP031 (a third faster than an f-string here)


#: whole contracts -> their ``_fp`` text (``_WHOLE[k] == _fp(100 * k)``), sizes up to 3000
_WHOLE = [f"{k}.00" for k in range(3002)]


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

    def __init__(self, venue: KalshiVenue, conn: SimConnection) -> None:
        super().__init__(venue, conn)
        headers = conn.request.headers
        self.authenticated = venue.public_key is not None or bool(headers.get("kalshi-access-key"))
        self.subs: dict[int, _Sub] = {}
        self.next_sid = 1
        self.state: dict[str, _MState] = {}
        self.streams: list[tuple[_Sub, _MState | None]] = []
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
            sub = _Sub(self.next_sid, ch, None if ch == "market_lifecycle_v2" else markets)
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

    def _state(self, ticker: str) -> _MState | None:
        st = self.state.get(ticker)
        if st is None:
            m = self.venue.by_ticker.get(ticker)
            if m is None or not m.active:
                return None  # unknown or closed markets never produce data
            st = self.state[ticker] = _MState(m, self.rnd)
        return st

    def _rebuild(self) -> None:
        streams: list[tuple[_Sub, _MState | None]] = []
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

    def _snapshots(self, sub: _Sub, markets: list[str], cmd_id: Any) -> None:
        out = []
        head = f'"id":{cmd_id},' if cmd_id is not None else ""
        for t in markets:
            st = self._state(t)
            if st is None:
                continue
            if st.book is None:
                st.book = _Book(st.price, self.rnd)
            sub.seq += 1
            out.append(
                f'{{{head}"type":"orderbook_snapshot","sid":{sub.sid},"seq":{sub.seq},"msg":{{'
                f'"market_ticker":"{t}","market_id":"{st.market.market_id}",{st.book.ladders()}}}}}'.encode()
            )
        self.conn.write_data(out)
        self.sent["book"] += len(out)

    def _initial_tickers(self, sub: _Sub, markets: list[str]) -> None:
        ns = time.time_ns()
        out = []
        for t in markets:
            st = self._state(t)
            if st is not None:
                out.append(self._ticker(sub, st, ns).encode())
        self.conn.write_data(out)
        self.sent["ticker"] += len(out)

    # -- data ------------------------------------------------------------------

    def _ticker(self, sub: _Sub, st: _MState, ns: int, iso: str = "") -> str:
        rnd = self.rnd
        p = st.price
        ms = ns // 1_000_000
        return _TICKER % (
            sub.sid,
            st.market.market_id,
            st.market.ticker,
            _DOL[p],
            _DOL[max(0, p - 1)],
            _DOL[min(100, p + 1)],
            _fp(st.volume),
            _fp(st.oi),
            st.volume * p // 10_000,
            st.oi * p // 10_000,
            _WHOLE[int(1 + rnd() * 3000)],
            _WHOLE[int(1 + rnd() * 3000)],
            _WHOLE[int(1 + rnd() * 100)],
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
                ap(
                    (
                        _TRADE
                        % (
                            sub.sid,
                            sub.seq,
                            self._uid(),
                            m.ticker,
                            _DOL[p],
                            _DOL[100 - p],
                            _fp(count_fp),
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
                    st.book = _Book(st.price, rnd)
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
                            _DOL[p],
                            _fp(d),
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

    def _lifecycle(self, sub: _Sub, ms: int, stalled: Callable[[str], bool] | None) -> str | None:
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
