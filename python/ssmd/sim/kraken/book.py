"""A Kraken v2 L2 book on integer ticks, with the checksum the venue publishes."""

from __future__ import annotations

import bisect
import zlib
from typing import Any

from ssmd.sim._fmt import trim
from ssmd.sim.kraken.universe import Pair

__all__ = ["L2Book", "Memo"]


_POOL = 1024


class L2Book:
    """A Kraken L2 book of exactly ``depth`` levels a side, on integer ticks.

    Updates follow the wire rules a client applies: levels in order, ``qty``
    the new total (0 deletes), then truncate to depth (no delete is sent for
    a level pushed out). Every level caches its wire text and its checksum
    text (price and qty digits at the pair's precisions with leading zeros
    removed, which is ``str`` of the scaled integers).
    """

    __slots__ = (
        "ac",
        "aq",
        "asks",
        "aw",
        "bc",
        "bids",
        "bq",
        "bw",
        "depth",
        "pool",
        "pp",
        "ptxt",
        "qmax",
        "qp",
        "qtxt",
        "rnd",
        "unit",
    )

    def __init__(self, rnd: Any, pair: Pair, depth: int) -> None:
        self.rnd = rnd
        self.pp, self.qp, self.depth = pair.pp, pair.qp, depth
        scale = 10**pair.qp
        self.qmax = max(10, int(20000 / max(pair.price, 1e-9) * scale))
        self.unit = 10 ** max(0, pair.qp - 2)
        self.ptxt = Memo(pair.pp)
        self.qtxt: dict[int, str] = {}  # price -> qty text of that level
        #: quantities drawn once with their wire texts (a draw is an index)
        self.pool = [(q, trim(q, pair.qp)) for q in (self.qty() for _ in range(_POOL))]
        mid = max(depth * 4 + 10, round(pair.price * 10**pair.pp))
        self.bids: list[int] = []  # ascending: best bid last
        self.asks: list[int] = []  # ascending: best ask first
        self.bq: dict[int, int] = {}
        self.aq: dict[int, int] = {}
        self.bw: dict[int, str] = {}  # wire text of a level
        self.aw: dict[int, str] = {}
        self.bc: dict[int, str] = {}  # checksum text of a level
        self.ac: dict[int, str] = {}
        p = mid
        for _ in range(depth):
            p -= 1 + int(rnd() * 3)
            if p <= 0:
                break
            self._set(True, p, self.qty())
        p = mid
        for _ in range(depth):
            p += 1 + int(rnd() * 3)
            self._set(False, p, self.qty())

    def qty(self) -> int:
        q = int(self.rnd() ** 2 * self.qmax) + 1
        if self.rnd() < 0.3:  # round lots: trailing zeros the wire trims
            q = max(self.unit, q - q % self.unit)
        return q

    def draw(self) -> tuple[int, str]:
        """A random quantity and its wire text."""
        return self.pool[int(self.rnd() * _POOL)]

    def _set(self, bid: bool, p: int, q: int, qt: str = "") -> None:
        if bid:
            levels, qty, wire, ck = self.bids, self.bq, self.bw, self.bc
        else:
            levels, qty, wire, ck = self.asks, self.aq, self.aw, self.ac
        if p not in qty:
            bisect.insort(levels, p)
        qty[p] = q
        qt = qt or trim(q, self.qp)
        self.qtxt[p] = qt
        wire[p] = f'{{"price":{self.ptxt[p]},"qty":{qt}}}'
        ck[p] = f"{p}{q}"

    def _del(self, bid: bool, p: int) -> None:
        if bid:
            levels, qty, wire, ck = self.bids, self.bq, self.bw, self.bc
        else:
            levels, qty, wire, ck = self.asks, self.aq, self.aw, self.ac
        levels.pop(bisect.bisect_left(levels, p))
        del qty[p], wire[p], ck[p]

    def _truncate(self) -> None:
        while len(self.bids) > self.depth:
            self._del(True, self.bids[0])
        while len(self.asks) > self.depth:
            self._del(False, self.asks[-1])

    def set_depth(self, depth: int) -> None:
        """Grow (worse levels appended) or shrink the book to ``depth`` levels a side."""
        self.depth = depth
        while len(self.bids) < depth and self.bids and self.bids[0] > 3:
            self._set(True, self.bids[0] - 1 - int(self.rnd() * 2), self.qty())
        while len(self.asks) < depth:
            self._set(False, self.asks[-1] + 1 + int(self.rnd() * 2), self.qty())
        self._truncate()

    def top(self) -> tuple[int, int, int, int]:
        b, a = self.bids[-1], self.asks[0]
        return b, self.bq[b], a, self.aq[a]

    def top_text(self) -> str:
        """``"bid":…,"bid_qty":…,"ask":…,"ask_qty":…`` of a ticker."""
        b, a = self.bids[-1], self.asks[0]
        pt, qt = self.ptxt, self.qtxt
        return f'"bid":{pt[b]},"bid_qty":{qt[b]},"ask":{pt[a]},"ask_qty":{qt[a]}'

    def checksum(self) -> int:
        ac, bc = self.ac, self.bc
        s = "".join([ac[p] for p in self.asks[:10]] + [bc[p] for p in self.bids[:-11:-1]])
        return zlib.crc32(s.encode()) & 0xFFFFFFFF

    def levels_json(self) -> tuple[str, str]:
        """Snapshot ladders: bids best first, asks best first."""
        bw, aw = self.bw, self.aw
        return ",".join([bw[p] for p in reversed(self.bids)]), ",".join([aw[p] for p in self.asks])

    def step(self, top: bool = False) -> tuple[str, str]:
        """One random change: the changed levels' wire texts (bids, asks)."""
        rnd = self.rnd
        bid = rnd() < 0.5
        levels = self.bids if bid else self.asks
        wire = self.bw if bid else self.aw
        n = len(levels)
        r = 0.0 if top else rnd()
        spread = self.asks[0] - self.bids[-1]
        if spread > 6 and not top:
            r = 0.9  # a wide spread fills in
        text = ""
        if 0.55 <= r < 0.8 and n > 2:
            i = int(rnd() ** 2 * n)
            p = levels[n - 1 - i] if bid else levels[i]
            gap = 1 + int(rnd() * 3)
            new = levels[0] - gap if bid else levels[-1] + gap
            if new > 0:
                self._del(bid, p)
                self._set(bid, new, *self.draw())
                text = f'{{"price":{self.ptxt[p]},"qty":0}},{wire[new]}'
            else:
                r = 0.0
        elif r >= 0.8:
            p2 = self._free_price(bid, spread)
            if p2 is not None:
                self._set(bid, p2, *self.draw())
                text = wire[p2]
                self._truncate()
            else:
                r = 0.0
        if not text:
            i = 0 if top else int(rnd() ** 2 * n)
            p = levels[n - 1 - i] if bid else levels[i]
            self._set(bid, p, *self.draw())
            text = wire[p]
        return (text, "") if bid else ("", text)

    def _free_price(self, bid: bool, spread: int) -> int | None:
        rnd = self.rnd
        if spread > 1:
            off = 1 + int(rnd() * min(3, spread - 1))
            return self.bids[-1] + off if bid else self.asks[0] - off
        levels = self.bids if bid else self.asks
        n = len(levels)
        for _ in range(4):
            j = int(rnd() * (n - 1))
            lo, hi = levels[j], levels[j + 1]
            if hi - lo > 1:
                return lo + 1 + int(rnd() * (hi - lo - 1))
        return None


class Memo(dict[int, str]):
    """Scaled integer -> trimmed text, computed once (prices repeat a lot)."""

    def __init__(self, decimals: int) -> None:
        super().__init__()
        self.decimals = decimals

    def __missing__(self, key: int) -> str:
        if len(self) > 200_000:
            self.clear()
        text = self[key] = trim(key, self.decimals)
        return text
