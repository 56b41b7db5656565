"""One condition's simulated book on a connection, in YES terms (the NO book is its mirror)."""

from __future__ import annotations

from typing import Any

from ssmd.sim.polymarket.universe import Condition

__all__ = ["PRICES", "Market", "order_hash", "size_text"]


def _price(v: int) -> str:
    """Thousandths as Polymarket writes prices: ``480`` → ``0.48``, ``1000`` → ``1``."""
    if v >= 1000:
        return "1"
    if v <= 0:
        return "0"
    return f"0.{v:03d}".rstrip("0")


#: thousandths -> price text
PRICES = [_price(v) for v in range(1001)]


def size_text(v: int) -> str:
    """Hundredths of a share as a trimmed decimal string: ``3000`` → ``30``."""
    whole, frac = divmod(v, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else str(whole)


class Market:
    """One condition's book on one connection (YES terms, thousandths; sizes in hundredths)."""

    __slots__ = (
        "_best",
        "asks",
        "bids",
        "cond",
        "last",
        "na",
        "nb",
        "tick",
        "tick_state",
        "ya",
        "yb",
    )

    def __init__(self, cond: Condition, rnd: Any) -> None:
        self.cond = cond
        self.tick = cond.tick
        self.tick_state = cond.tick
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        # wire text of each level: YES bids/asks, NO bids (from YES asks), NO asks (from YES bids)
        self.yb: dict[int, str] = {}
        self.ya: dict[int, str] = {}
        self.nb: dict[int, str] = {}
        self.na: dict[int, str] = {}
        self._best: tuple[int, int] | None = None
        step = max(cond.tick, 10)
        b = cond.mid - step // 2 if step > 1 else cond.mid - 1
        b -= b % cond.tick
        a = b + step
        for i in range(8):
            if b - i * step > 0:
                self.store(True, b - i * step, 100 * (1 + int(rnd() ** 2 * 5000)))
            if a + i * step < 1000:
                self.store(False, a + i * step, 100 * (1 + int(rnd() ** 2 * 5000)))
        self.last = b

    def store(self, bid: bool, p: int, s: int) -> None:
        """Set a YES level (``s == 0`` removes it) and its wire texts."""
        side, own, mirror = (self.bids, self.yb, self.na) if bid else (self.asks, self.ya, self.nb)
        self._best = None
        if s <= 0:
            side.pop(p, None)
            own.pop(p, None)
            mirror.pop(p, None)
            return
        side[p] = s
        size = size_text(s)
        own[p] = f'{{"price":"{PRICES[p]}","size":"{size}"}}'
        mirror[p] = f'{{"price":"{PRICES[1000 - p]}","size":"{size}"}}'

    def best(self) -> tuple[int, int]:
        b = self._best
        if b is None:
            b = self._best = (max(self.bids, default=0), min(self.asks, default=1000))
        return b

    def token_best(self, yes: bool) -> tuple[int, int]:
        b, a = self.best()
        return (b, a) if yes else (1000 - a, 1000 - b)

    def ladder(self, yes: bool) -> tuple[str, str]:
        """bids ascending (best last), asks descending (best last), in the token's terms."""
        if yes:
            yb, ya = self.yb, self.ya
            return (
                ",".join([yb[p] for p in sorted(self.bids)]),
                ",".join([ya[p] for p in sorted(self.asks, reverse=True)]),
            )
        nb, na = self.nb, self.na
        return (
            ",".join([nb[p] for p in sorted(self.asks, reverse=True)]),
            ",".join([na[p] for p in sorted(self.bids)]),
        )

    def change(self, rnd: Any) -> tuple[bool, int, int]:
        """One level change in YES terms: (bid side, price, new size; 0 removes)."""
        bid = rnd() < 0.5
        side = self.bids if bid else self.asks
        b, a = self.best()
        r = rnd()
        tick = self.tick
        if (r < 0.3 and len(side) > 3) or len(side) > 14:
            levels = sorted(side, reverse=bid)
            p = levels[int(rnd() ** 2 * len(levels))]
            self.store(bid, p, 0)
            return bid, p, 0
        if r < 0.55 and a - b > tick:
            p = b + tick if bid else a - tick
        elif r < 0.75 or not side:
            far = (min(side) if bid else max(side)) if side else (b if bid else a)
            p = far - tick * (1 + int(rnd() * 3)) if bid else far + tick * (1 + int(rnd() * 3))
            if not 0 < p < 1000:
                p = b if bid else a
                if p not in side:
                    return bid, p, 0
        else:
            levels = sorted(side, reverse=bid)
            p = levels[int(rnd() ** 2 * len(levels))]
        s = 100 * (1 + int(rnd() ** 2 * 5000)) + int(rnd() * 100)
        self.store(bid, p, s)
        return bid, p, s


def order_hash(rng: Any) -> str:
    return f"{rng.getrandbits(160):040x}"
