"""One product's simulated state on a connection: its book and trade sequence."""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any

from ssmd.sim._fmt import trim
from ssmd.sim.kraken_futures.universe import Product

__all__ = ["BOOK_LEVELS", "SNAPSHOT_TRADES", "Prod"]


SNAPSHOT_TRADES = 20


BOOK_LEVELS = 25


class _Book:
    """A plain L2 book on integer ticks; deltas set one level (0 removes)."""

    __slots__ = ("asks", "bids", "levels", "product", "qmax", "rnd")

    def __init__(self, rnd: Any, product: Product) -> None:
        self.rnd = rnd
        self.product = product
        self.qmax = max(10, int(30000 / product.price * 10**product.qp))
        step = product.step
        mid = round(product.price * 10**product.pp / step) * step
        self.bids: list[int] = []  # ascending, best last
        self.asks: list[int] = []  # ascending, best first
        self.levels: dict[tuple[bool, int], int] = {}
        for i in range(1, BOOK_LEVELS + 1):
            self._set(True, mid - i * step, self.qty())
            self._set(False, mid + i * step, self.qty())

    def qty(self) -> int:
        return int(self.rnd() ** 3 * self.qmax) + 1

    def _set(self, bid: bool, p: int, q: int) -> None:
        side = self.bids if bid else self.asks
        if q == 0:
            if (bid, p) in self.levels:
                del self.levels[bid, p]
                side.pop(bisect.bisect_left(side, p))
            return
        if (bid, p) not in self.levels:
            bisect.insort(side, p)
        self.levels[bid, p] = q

    def step(self) -> tuple[bool, int, int]:
        """One change: (bid side, price, new qty; 0 removes the level)."""
        rnd = self.rnd
        bid = rnd() < 0.5
        side = self.bids if bid else self.asks
        n = len(side)
        step = self.product.step
        r = rnd()
        if n > 35 or (r < 0.25 and n > 12):
            p = side[n - 1 - int(rnd() ** 2 * n)] if bid else side[int(rnd() ** 2 * n)]
            q = 0
        elif n < 15 or r < 0.45:
            best_b, best_a = self.bids[-1], self.asks[0]
            if best_a - best_b > step and rnd() < 0.5:
                p = best_b + step if bid else best_a - step
            else:
                edge = side[0] if bid else side[-1]
                p = (
                    edge - step * (1 + int(rnd() * 3))
                    if bid
                    else edge + step * (1 + int(rnd() * 3))
                )
                if p <= 0:
                    p = side[-1] if bid else side[0]
            q = self.qty()
        else:
            p = side[n - 1 - int(rnd() ** 2 * n)] if bid else side[int(rnd() ** 2 * n)]
            q = self.qty()
        self._set(bid, p, q)
        return bid, p, q

    def ladders(self) -> tuple[str, str]:
        pp, qp, lv = self.product.pp, self.product.qp, self.levels
        bids = ",".join(
            f'{{"price":{trim(p, pp)},"qty":{trim(lv[True, p], qp)}}}' for p in reversed(self.bids)
        )
        asks = ",".join(
            f'{{"price":{trim(p, pp)},"qty":{trim(lv[False, p], qp)}}}' for p in self.asks
        )
        return bids, asks


class Prod:
    """One product on one connection: book, trades, subscriptions."""

    __slots__ = (
        "book",
        "book_seq",
        "last",
        "next_ticker",
        "product",
        "recent",
        "sub_book",
        "sub_ticker",
        "sub_trade",
        "trade_seq",
        "volume",
    )

    def __init__(self, product: Product, rnd: Any) -> None:
        self.product = product
        self.book = _Book(rnd, product)
        self.book_seq = 1000 + int(rnd() * 100_000)
        self.trade_seq = 10_000 + int(rnd() * 1_000_000)
        self.last = self.book.bids[-1]
        self.volume = 0
        self.recent: deque[str] = deque(maxlen=SNAPSHOT_TRADES)
        self.sub_ticker = self.sub_trade = self.sub_book = False
        self.next_ticker = 0.0
