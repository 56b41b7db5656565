"""Kraken spot REST over the simulated universe: ``/0/public/AssetPairs``, ``/0/public/Trades``
(the trades the simulator sent), and the v2 instrument snapshot."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ssmd.sim._fmt import iso_us, trim
from ssmd.sim.base import TradeHistory, Venue
from ssmd.sim.http import HttpError, Request, Response, json_response
from ssmd.sim.kraken.universe import Pair, build_universe

__all__ = ["KrakenRest", "TradeLog", "now_iso"]

#: ``GET /0/public/Trades``: trades per page by default and at most
TRADES_COUNT = 1000


class TradeLog(TradeHistory[tuple[int, list[Any]]]):
    """The trades sent on trade channels, newest ``per_pair`` per pair, for
    ``GET /0/public/Trades`` (the venue's trade history, which ``ssmd dq trades``
    compares the archive with). Each row is the REST array
    ``[price, volume, time, side, ordertype, misc, trade_id]`` after its time in ns."""

    def __init__(self, per_pair: int = 20_000) -> None:
        super().__init__(per_pair)

    def add(
        self, symbol: str, ns: int, price: str, qty: str, side: str, ord_type: str, trade_id: int
    ) -> None:
        row = [price, qty, ns // 1000 / 1e6, side[0], ord_type[0], "", trade_id]
        self.append(symbol, (ns, row))

    def select(self, symbol: str, since_ns: int | None, count: int) -> tuple[list[Any], int]:
        """Oldest first: from ``since_ns`` on (trades at exactly that time included), or the
        newest ``count`` without it; and the ``last`` cursor (ns of the last trade given)."""
        log = sorted(self.trades.get(symbol, ()), key=lambda t: t[0])
        if since_ns is not None:
            log = [t for t in log if t[0] >= since_ns]
        chosen = log[:count] if since_ns is not None else log[-count:]
        last = chosen[-1][0] if chosen else (since_ns or 0)
        return [row for _, row in chosen], last


class KrakenRest(Venue):
    name = "kraken"
    ws_path = "/v2"
    rest_path = "/0"

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.pairs = build_universe(instruments)
        self.by_symbol = {p.symbol: p for p in self.pairs}
        self.trade_log = TradeLog()

    def instrument_ids(self) -> list[str]:
        return [p.symbol for p in self.pairs]

    def rest_error(
        self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        text = {404: "EGeneral:Unknown method", 429: "EGeneral:Too many requests"}.get(
            status, f"EGeneral:Invalid arguments:{message}"
        )
        return json_response(
            {"error": [text], "result": {}} if status != 429 else {"error": [text]}, status, headers
        )

    def _index(self, pairs: Sequence[Pair]) -> dict[str, Pair]:
        index = {}
        for p in pairs:
            for name in (p.key, p.altname, p.wsname, p.symbol):
                index[name.upper()] = p
        return index

    def rest(self, req: Request) -> Response:
        path = req.path.rstrip("/")
        if path == "/0/public/Trades":
            return self._trades(req)
        if path != "/0/public/AssetPairs":
            raise HttpError(404, req.path)
        wanted = req.args("pair")
        pairs = [p for p in self.pairs if self.records.listed("AssetPairs", p.key)]
        if wanted:
            index = self._index(pairs)
            chosen = [index.get(w.upper()) for w in wanted]
            if any(c is None for c in chosen):
                return json_response({"error": ["EQuery:Unknown asset pair"]})
            pairs = [c for c in dict.fromkeys(chosen) if c is not None]
        result = {
            p.key: self.records.record("AssetPairs", p.key, self.asset_pair(p)) for p in pairs
        }
        return json_response({"error": [], "result": result})

    def _trades(self, req: Request) -> Response:
        """``GET /0/public/Trades``: ``pair`` (any of its names), ``since`` (unix seconds, or
        ns as the ``last`` cursor gives it), ``count`` (1..1000); keyed by the pair's REST key."""
        p = self._index(self.pairs).get((req.arg("pair") or "").upper())
        if p is None:
            return json_response({"error": ["EQuery:Unknown asset pair"]})
        raw = req.arg("since")
        try:
            since = int(raw) if raw else None
        except ValueError:
            return json_response({"error": ["EGeneral:Invalid arguments:since"]})
        if since is not None and since < 10**12:
            since *= 1_000_000_000
        count = req.int_arg("count", TRADES_COUNT, 1, TRADES_COUNT)
        rows, last = self.trade_log.select(p.symbol, since, count)
        return json_response({"error": [], "result": {p.key: rows, "last": str(last)}})

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


def now_iso() -> str:
    return iso_us(time.time_ns())
