"""One market's simulated state on a connection: its book, and a subscription."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssmd.sim._fmt import fixed
from ssmd.sim.kalshi.universe import Market

__all__ = ["DOL", "WHOLE", "Book", "MState", "Sub", "fp"]


class Book:
    """YES bids and NO bids in cents with sizes in hundredths; never crossed."""

    __slots__ = ("no", "yes")

    def __init__(self, mid: int, rnd: Any) -> None:
        self.yes = {p: 100 * (1 + int(rnd() ** 2 * 2000)) for p in range(max(1, mid - 6), mid)}
        self.no = {
            p: 100 * (1 + int(rnd() ** 2 * 2000)) for p in range(max(1, 99 - mid - 6), 99 - mid)
        }

    def delta(self, rnd: Any) -> tuple[str, int, int]:
        """(side, price cents, signed size change in hundredths)."""
        yes = rnd() < 0.5
        side, other = (self.yes, self.no) if yes else (self.no, self.yes)
        ceiling = 99 - max(other, default=0)  # highest price that does not cross
        if side and rnd() < 0.45:
            p = max(side) - int(rnd() ** 2 * min(len(side), 8))
            p = p if p in side else max(side)
            d = -min(side[p], 100 * (1 + int(rnd() * 500)))
            if rnd() < 0.3:
                d = -side[p]
        else:
            top = max(side, default=ceiling - 3)
            p = min(ceiling, max(1, top + 1 - int(rnd() * 5)))
            if p < 1:
                p = 1
            d = 100 * (1 + int(rnd() ** 2 * 1000))
        left = side.get(p, 0) + d
        if left > 0:
            side[p] = left
        else:
            side.pop(p, None)
        return ("yes" if yes else "no"), p, d

    def ladders(self) -> str:
        parts = []
        for key, side in (("yes_dollars_fp", self.yes), ("no_dollars_fp", self.no)):
            if side:
                levels = ",".join(
                    f'["{fixed(p * 100, 4)}","{fixed(s, 2)}"]' for p, s in sorted(side.items())
                )
                parts.append(f'"{key}":[{levels}]')
        return ",".join(parts)


class MState:
    """A market's ticker state on one connection."""

    __slots__ = ("book", "market", "oi", "price", "volume")

    def __init__(self, market: Market, rnd: Any) -> None:
        self.market = market
        self.price = market.mid
        self.volume = 100 * int(1000 + rnd() * 900_000)
        self.oi = self.volume // 3
        self.book: Book | None = None


@dataclass
class Sub:
    sid: int
    channel: str
    markets: list[str] | None  # None: every market
    seq: int = 0


#: cents -> dollar string ("0.4500")
DOL = [fixed(c * 100, 4) for c in range(101)]


def fp(v: int) -> str:
    """Hundredths as a 2-decimal string (``-5400`` → ``-54.00``)."""
    if v < 0:
        return "-" + fp(-v)
    return "%d.%02d" % divmod(v, 100)  # noqa: UP031 (a third faster than an f-string here)


#: whole contracts -> their ``fp`` text (``WHOLE[k] == fp(100 * k)``), sizes up to 3000
WHOLE = [f"{k}.00" for k in range(3002)]
