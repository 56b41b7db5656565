"""Kraken spot REST over the simulated universe: ``/0/public/AssetPairs``, and the v2 instrument snapshot."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ssmd.sim._fmt import iso_us, trim
from ssmd.sim.base import Venue
from ssmd.sim.http import HttpError, Request, Response, json_response
from ssmd.sim.kraken.universe import Pair, build_universe

__all__ = ["KrakenRest", "now_iso"]


class KrakenRest(Venue):
    name = "kraken"
    ws_path = "/v2"
    rest_path = "/0"

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.pairs = build_universe(instruments)
        self.by_symbol = {p.symbol: p for p in self.pairs}

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


def now_iso() -> str:
    return iso_us(time.time_ns())
