"""The simulated Kalshi universe: series, events and markets (and the REST status filters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ssmd.sim._fmt import uuid4

__all__ = ["STATUS_FILTERS", "WS_PATH", "Market", "build_universe"]


WS_PATH = "/trade-api/ws/v2"


STATUS_FILTERS = {
    "unopened": ("initialized",),
    "open": ("active",),
    "paused": ("inactive",),
    "closed": ("closed",),
    "settled": ("determined", "finalized"),
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


def build_universe(
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
