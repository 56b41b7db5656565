"""Number, time and id formatting shared by the venue simulators."""

from __future__ import annotations

import random
import time

__all__ = ["BatchClock", "fixed", "iso_ms", "iso_us", "trim", "uuid4"]


def trim(v: int, d: int) -> str:
    """Scaled integer ``v`` (``d`` decimals) as a JSON number, trailing zeros trimmed.

    Kraken's wire style: ``840001`` with 1 decimal is ``84000.1``, ``84000``
    scaled by 10 is ``8400.0`` (one zero kept), ``56600`` with 5 decimals is
    ``0.566``.
    """
    if v < 0:
        return "-" + trim(-v, d)
    if d == 0:
        return f"{v}.0"
    s = str(v)
    n = len(s)
    if n <= d:
        s = "0" * (d + 1 - n) + s
        n = d + 1
    frac = s[n - d :].rstrip("0")
    return f"{s[: n - d]}.{frac or '0'}"


def fixed(v: int, d: int) -> str:
    """Scaled integer ``v`` with exactly ``d`` decimals (``4500``, 4 → ``0.4500``)."""
    if d == 0:
        return str(v)
    sign = "-" if v < 0 else ""
    s = str(abs(v)).rjust(d + 1, "0")
    return f"{sign}{s[:-d]}.{s[-d:]}"


def iso_us(ns: int) -> str:
    """RFC 3339 UTC with microseconds: ``2026-09-25T17:48:26.844359Z``."""
    s, us = divmod(ns // 1000, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{us:06d}Z"


class BatchClock:
    """The times of a connection's generated batches of messages.

    A batch stands for the messages of the time since the previous one, and a
    late event loop makes it large (a quarter of a second of the rate). A trade
    that is the k-th of its n messages is dated k/n of the way through that time
    (one second back at most) rather than at the batch's instant: a venue does
    not print hundreds of trades of one instrument at one millisecond, more than
    a page of its trade history holds.
    """

    __slots__ = ("_prefix", "_s", "first", "last", "n", "span")

    def __init__(self) -> None:
        self.last = self.first = time.time_ns()
        self.span = 0
        self.n = 1
        self._s = -1
        self._prefix = ""

    def batch(self, n: int) -> int:
        """Start a batch of ``n`` messages; the time now (ns)."""
        now = time.time_ns()
        self.span = min(max(now - self.last, 0), 1_000_000_000)
        self.first = now - self.span
        self.n = max(n, 1)
        self.last = now
        return now

    def at(self, k: int) -> int:
        """The time (ns) of the batch's ``k``-th message (from 0)."""
        return self.first + self.span * (k + 1) // self.n

    def sent(self, ns: int) -> None:
        """Something went out at ``ns`` (a snapshot): later batches are not dated before it."""
        self.last = max(self.last, ns)

    def iso_us(self, ns: int) -> str:
        """:func:`iso_us`, formatting the seconds once per second."""
        s, us = divmod(ns // 1000, 1_000_000)
        if s != self._s:
            self._s = s
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
        return f"{self._prefix}.{us:06d}Z"


def iso_ms(ns: int) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-09-25T17:43:59.000Z``."""
    s, ms = divmod(ns // 1_000_000, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{ms:03d}Z"


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (reproducible for a seed)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
