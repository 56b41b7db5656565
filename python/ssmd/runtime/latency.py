"""Pipeline latency: from a line's receive time (``rx``) to durable or acknowledged.

A sink records, for each group of lines it hands on (one core batch into the
archive, one bus message), the time from the receive stamp of the group's
first line to the moment the group is safe: fsynced into the archive
(``durable``) or acknowledged by JetStream (``acked``), weighted by the
number of lines. The first line of a group is its oldest, so the figure is
an upper bound for every line of the group.

:class:`LatencyHistogram` costs two array increments per record, keeps
fixed memory (log-spaced buckets, 32 per decade from 10 µs to 1000 s: a
quantile is read to within 7.5 %), and also counts the coarse Prometheus
buckets that :mod:`ssmd.runtime.metrics` exports as
``ssmd_pipeline_latency_seconds``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator

__all__ = ["PROM_BUCKETS", "LatencyHistogram", "first_rx"]

#: the Prometheus buckets (seconds, upper bounds)
PROM_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
)

_PER_DECADE = 32
_LOW = 1e-5  # everything below lands in bucket 0
_DECADES = 8  # 10 µs .. 1000 s
_N = _PER_DECADE * _DECADES + 2
_SCALE = _PER_DECADE / math.log(10.0)
_LOG_LOW = math.log(_LOW)


def first_rx(lines: bytes) -> int:
    """The ``rx`` of the first envelope line in ``lines`` (0 if it has none)."""
    if not lines.startswith(b'{"rx":'):
        return 0
    end = lines.find(b",", 6, 32)
    try:
        return int(lines[6:end])
    except ValueError:
        return 0


class LatencyHistogram:
    """Weighted latency counts in fixed log buckets, plus the Prometheus buckets."""

    __slots__ = ("_fine", "_prom", "count", "max", "sum")

    def __init__(self) -> None:
        self._fine = [0] * _N
        self._prom = [0] * (len(PROM_BUCKETS) + 1)  # the last: over every bound (+Inf)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def reset(self) -> None:
        """Forget every count (in place: writers keep their reference)."""
        self._fine[:] = [0] * _N
        self._prom[:] = [0] * len(self._prom)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, seconds: float, weight: int = 1) -> None:
        """Record ``weight`` lines that took ``seconds``."""
        if seconds < _LOW:
            i = 0
            seconds = max(seconds, 0.0)
        else:
            i = min(_N - 1, 1 + int((math.log(seconds) - _LOG_LOW) * _SCALE))
        self._fine[i] += weight
        self._prom[bisect_left(PROM_BUCKETS, seconds)] += weight
        self.count += weight
        self.sum += seconds * weight
        if seconds > self.max:
            self.max = seconds

    def observe_since(self, rx_ns: int, now_ns: int, weight: int = 1) -> None:
        """Record ``weight`` lines received at ``rx_ns`` and safe at ``now_ns``."""
        if rx_ns > 0:
            self.observe((now_ns - rx_ns) / 1e9, weight)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) in seconds (the upper edge of its bucket; 0 if empty)."""
        if self.count == 0:
            return 0.0
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self._fine):
            seen += n
            if n and seen >= rank:
                if i == 0:
                    return _LOW
                return min(self.max, math.exp(_LOG_LOW + i / _SCALE))
        return self.max

    def buckets(self) -> Iterator[tuple[float, int]]:
        """Cumulative Prometheus buckets: ``(upper bound, count)``, ending with ``(inf, total)``."""
        total = 0
        for le, n in zip((*PROM_BUCKETS, math.inf), self._prom, strict=True):
            total += n
            yield le, total

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts to these."""
        for i, n in enumerate(other._fine):
            self._fine[i] += n
        for i, n in enumerate(other._prom):
            self._prom[i] += n
        self.count += other.count
        self.sum += other.sum
        self.max = max(self.max, other.max)

    def summary(self) -> dict[str, float]:
        """Lines, p50/p90/p99/p99.9 and max, in milliseconds."""
        ms = 1000.0
        return {
            "lines": self.count,
            "p50_ms": round(self.quantile(0.5) * ms, 3),
            "p90_ms": round(self.quantile(0.9) * ms, 3),
            "p99_ms": round(self.quantile(0.99) * ms, 3),
            "p999_ms": round(self.quantile(0.999) * ms, 3),
            "max_ms": round(self.max * ms, 3),
            "mean_ms": round(self.sum / self.count * ms, 3) if self.count else 0.0,
        }
