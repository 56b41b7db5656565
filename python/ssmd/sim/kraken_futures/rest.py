"""Kraken Futures REST v3 over the simulated universe: ``/instruments``, ``/tickers`` and
``/history`` (the trades the simulator sent)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from ssmd.sim._fmt import iso_ms
from ssmd.sim.base import TradeHistory, Venue
from ssmd.sim.http import HttpError, Request, Response, json_response
from ssmd.sim.kraken_futures.universe import Product, build_universe

__all__ = ["KrakenFuturesRest", "TradeLog"]

#: ``GET /history``: trades per page
HISTORY_PAGE = 100


class TradeLog(TradeHistory[tuple[int, int, str, str, str, str, str]]):
    """The trades sent, newest ``per_product`` per product, for ``GET /history`` (the
    venue's public trade history, which ``ssmd dq trades`` compares the archive with):
    ``(ms, seq, uid, side, type, qty, price)`` as sent; the REST item is built when asked."""

    def __init__(self, per_product: int = 20_000) -> None:
        super().__init__(per_product)

    def add(
        self, symbol: str, ms: int, seq: int, uid: str, side: str, kind: str, qty: str, price: str
    ) -> None:
        self.append(symbol, (ms, seq, uid, side, kind, qty, price))

    def before(self, symbol: str, last_ms: int | None) -> list[dict[str, Any]]:
        """Newest first: the ``HISTORY_PAGE`` latest trades strictly before ``last_ms``."""
        log = self.trades.get(symbol, ())
        chosen = [t for t in log if last_ms is None or t[0] < last_ms]
        chosen.reverse()  # newest sent first among equal times
        chosen.sort(key=lambda t: t[0], reverse=True)
        return [
            {
                "time": iso_ms(ms * 1_000_000),
                "trade_id": seq,
                "price": float(price),
                "size": float(qty),
                "side": side,
                "type": kind,
                "uid": uid,
            }
            for ms, seq, uid, side, kind, qty, price in chosen[:HISTORY_PAGE]
        ]


def parse_time_ms(raw: str) -> int:
    """``lastTime``: RFC 3339 (``2026-09-25T17:43:59.000Z``) or unix ms; :class:`HttpError` 400."""
    try:
        if raw.isdigit():
            return int(raw)
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise HttpError(400, f"invalid lastTime: {raw!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


class KrakenFuturesRest(Venue):
    name = "kraken-futures"
    ws_path = "/ws/v1"
    rest_path = "/derivatives/api/v3"

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.products = build_universe(instruments)
        self.by_symbol = {p.symbol: p for p in self.products}
        self.trade_log = TradeLog()

    def instrument_ids(self) -> list[str]:
        return [p.symbol for p in self.products]

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
        if path == f"{root}/history":
            sym = (req.arg("symbol") or "").upper()
            if sym not in self.by_symbol:
                raise HttpError(400, "invalidArgument: symbol")
            raw = req.arg("lastTime")
            history = self.trade_log.before(sym, parse_time_ms(raw) if raw else None)
            return json_response({"result": "success", "history": history, "serverTime": now})
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
