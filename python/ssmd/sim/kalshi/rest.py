"""Kalshi REST v2 over the simulated universe (series, fee changes, events, markets in
cursor pages) and the API-key signatures the upgrade carries."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssmd.errors import ConfigError
from ssmd.sim._fmt import fixed
from ssmd.sim.base import TradeHistory, Venue
from ssmd.sim.http import (
    HttpError,
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    json_response,
    page,
)
from ssmd.sim.kalshi.universe import STATUS_FILTERS, WS_PATH, Market, build_universe

__all__ = ["KalshiRest", "load_public_key", "verify_signature"]


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


class TradeLog(TradeHistory[dict[str, Any]]):
    """The trades sent on every connection, newest ``per_market`` per market, for
    ``GET /markets/trades`` (the venue's trade history, which ``ssmd dq trades`` compares
    the archive with)."""

    def __init__(self, per_market: int = 20_000) -> None:
        super().__init__(per_market)

    def add(
        self, ticker: str, trade_id: str, ms: int, yes: str, no: str, count: str, side: str
    ) -> None:
        self.append(
            ticker,
            {
                "trade_id": trade_id,
                "ticker": ticker,
                "yes_price_dollars": yes,
                "no_price_dollars": no,
                "count_fp": count,
                "taker_side": side,
                "created_time": iso_ms(ms),
                "ts_ms": ms,
            },
        )

    def select(self, ticker: str | None, min_ts: int | None, max_ts: int | None) -> list[Any]:
        """Newest first, as the venue lists them; ``min_ts``/``max_ts`` in seconds."""
        logs = [self.trades.get(ticker, ())] if ticker else list(self.trades.values())
        out = [
            t
            for log in logs
            for t in log
            if (min_ts is None or t["ts_ms"] >= min_ts * 1000)
            and (max_ts is None or t["ts_ms"] <= max_ts * 1000)
        ]
        out.sort(key=lambda t: t["ts_ms"], reverse=True)
        return [{k: v for k, v in t.items() if k != "ts_ms"} for t in out]


def iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class KalshiRest(Venue):
    name = "kalshi"
    ws_path = WS_PATH
    rest_path = "/trade-api/v2"

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.series, self.events, self.markets = build_universe(self.rng, instruments)
        self.by_ticker = {m.ticker: m for m in self.markets}
        self.active = [m for m in self.markets if m.active]
        self.public_key = server.kalshi_public_key
        self.trade_log = TradeLog()

    def instrument_ids(self) -> list[str]:
        return [m.ticker for m in self.active]

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

    def _trades(self, req: Request) -> Response:
        """``GET /markets/trades``: ``ticker``, ``min_ts``/``max_ts`` (s), ``limit``, ``cursor``."""
        lo, hi = req.arg("min_ts"), req.arg("max_ts")
        try:
            bounds = (int(lo) if lo else None, int(hi) if hi else None)
        except ValueError:
            raise HttpError(400, "min_ts and max_ts are unix seconds") from None
        items = self.trade_log.select(req.arg("ticker"), *bounds)
        chunk, cursor = self._cursor_page(req, items, 100, 1000)
        return json_response({"cursor": cursor, "trades": chunk})

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
        if rel == "/markets/trades":
            return self._trades(req)
        if rel.startswith("/markets/"):
            one = self.by_ticker.get(rel.split("/", 2)[2])
            if one is None:
                raise HttpError(404, "market not found")
            return json_response({"market": self.market_json(one)})
        raise HttpError(404, f"not found: {req.path}")
