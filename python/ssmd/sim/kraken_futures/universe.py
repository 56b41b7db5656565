"""The simulated Kraken Futures universe: perpetual, inverse and dated products."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Product", "build_universe"]


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


def build_universe(instruments: Sequence[str] | int | None) -> list[Product]:
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
