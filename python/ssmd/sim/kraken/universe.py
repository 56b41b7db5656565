"""The simulated Kraken spot universe: pairs with their four names and precisions."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Pair", "build_universe"]


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


def build_universe(instruments: Sequence[str] | int | None) -> list[Pair]:
    if instruments is None:
        return list(_PAIRS)
    if isinstance(instruments, int):
        extra = [_synthetic_pair(f"SIM{i}/USD") for i in range(max(0, instruments - len(_PAIRS)))]
        return (list(_PAIRS) + extra)[:instruments]
    known = {p.symbol: p for p in _PAIRS}
    return [known.get(s) or _synthetic_pair(s) for s in dict.fromkeys(instruments)]
