"""Data stall detection (DESIGN section 9: liveness of the data, not the socket).

Each connection keeps an :class:`ActivityTracker` fed with data message counts
per key (one key per instrument, plus :data:`CONNECTION` for the whole
connection). The tracker keeps an exponentially decayed rate per key
(time constant ``3 * bound``) frozen at the last message, so a silence is
judged against the rate the key had *before* it went quiet:

* a key is stalled when it has been silent for at least ``bound`` seconds
  **and** for at least ``min_expected / rate`` seconds (its own rate says it
  should have sent ``min_expected`` messages in that time, default 10);
* a key whose rate is so low that this would take more than
  ``max_factor * bound`` is quiet and never flagged (a Kalshi market can be
  silent for hours);
* a key is judged only after it has been heard over at least half a bound
  (first to last message): a single burst, such as the snapshots that follow
  a subscription, is not a rate.

So a busy instrument (``rate * bound >= min_expected``) is flagged within the
bound (default 10 s), slower ones later, quiet ones never. A key is flagged
once per silence and again only every ``max_factor * bound`` while the
silence lasts (a redrive that did not help is retried, a venue in
maintenance is not hammered); the next message clears it. The supervisor records each
stall as a ``stall`` status line and redrives it (see :mod:`.supervisor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CONNECTION", "ActivityTracker", "Stall"]

#: key of the whole connection's data
CONNECTION = ""


@dataclass(frozen=True)
class Stall:
    """A key that went silent against its own recent rate."""

    key: str
    silent: float  # seconds since its last message
    rate: float  # messages/s before the silence

    @property
    def whole_connection(self) -> bool:
        return self.key == CONNECTION


class ActivityTracker:
    """Decayed per-key message rates and last-seen times."""

    __slots__ = (
        "_first",
        "_flagged",
        "_last",
        "_rate",
        "bound",
        "max_factor",
        "min_expected",
        "tau",
    )

    def __init__(
        self, bound: float = 10.0, *, min_expected: float = 10.0, max_factor: float = 6.0
    ) -> None:
        if bound <= 0:
            raise ValueError("stall bound must be positive")
        self.bound = bound
        self.min_expected = min_expected
        self.max_factor = max_factor
        self.tau = 3.0 * bound
        self._rate: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._first: dict[str, float] = {}
        self._flagged: dict[str, float] = {}  # key -> when it was last flagged

    def seen(self, key: str, n: int, now: float) -> None:
        """``n`` data messages of ``key`` arrived at ``now`` (monotonic seconds)."""
        last = self._last.get(key)
        if last is None:
            self._rate[key] = n / self.tau
            self._first[key] = now
        else:
            dt = now - last
            decay = math.exp(-dt / self.tau) if dt > 0 else 1.0
            self._rate[key] = self._rate[key] * decay + n / self.tau
        self._last[key] = now
        if self._flagged:
            self._flagged.pop(key, None)

    def rate(self, key: str) -> float:
        """The key's rate at its last message (messages/s), 0 if never seen."""
        return self._rate.get(key, 0.0)

    def forget(self, key: str) -> None:
        """Stop watching ``key`` (unsubscribed)."""
        self._rate.pop(key, None)
        self._last.pop(key, None)
        self._first.pop(key, None)
        self._flagged.pop(key, None)

    def restart(self, now: float) -> None:
        """A (re)subscription: silence is measured from ``now``, rates and flags are kept."""
        for key in self._last:
            self._last[key] = now
            self._first[key] = min(self._first[key], now - self.bound)

    def shift(self, dt: float) -> None:
        """``dt`` seconds were not listened to (reading paused): they are not silence."""
        if dt <= 0:
            return
        for key, last in self._last.items():
            self._last[key] = last + dt
            self._first[key] += dt

    def check(self, now: float) -> list[Stall]:
        """Keys that became stalled since the last check (see the module docstring)."""
        out: list[Stall] = []
        bound = self.bound
        horizon = self.max_factor * bound
        first = self._first
        for key, last in self._last.items():
            silent = now - last
            if silent < bound or last - first[key] < bound / 2:
                continue
            flagged = self._flagged.get(key)
            if flagged is not None and now - flagged < horizon:
                continue
            rate = self._rate[key]
            if rate <= 0:
                continue
            need = self.min_expected / rate
            if need > horizon or silent < need:
                continue
            self._flagged[key] = now
            out.append(Stall(key, silent, rate))
        return out

    def __len__(self) -> int:
        return len(self._last)
