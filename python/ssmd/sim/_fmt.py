"""Number, time and id formatting shared by the venue simulators."""

from __future__ import annotations

import random
import time

__all__ = ["fixed", "iso_ms", "iso_us", "trim", "uuid4"]


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


def iso_ms(ns: int) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-09-25T17:43:59.000Z``."""
    s, ms = divmod(ns // 1_000_000, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{ms:03d}Z"


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (reproducible for a seed)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
