"""Exponential backoff with full jitter, and a floor from ``Retry-After``.

The one retry delay of ssmd: the connection supervisor, the connectors'
REST discovery, the secmaster's HTTP client and the bus sink all use
:class:`Backoff`. The delay before attempt ``n`` (from 0) is
``uniform(0, min(cap, base * factor**n))``; a venue's ``Retry-After``
(HTTP 429/503, parsed by :func:`ssmd.errors.parse_retry_after`) is a floor.
What to retry at all is decided by :func:`ssmd.errors.classify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

from ssmd.errors import ErrorClass, Failure, classify

__all__ = ["Backoff", "retry_until_stopped"]


class Backoff:
    """Exponential backoff with full jitter and a floor from ``Retry-After``.

    ``next_delay()`` returns the delay before the next attempt and counts the
    attempt; ``reset()`` starts over after a connection proved healthy.
    ``delay(n)`` is the delay before attempt ``n`` without counting, for
    callers that keep their own attempt counts (one per request or message).
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        factor: float = 2.0,
        *,
        max_retry_after: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base or factor < 1:
            raise ValueError("backoff needs 0 < base <= cap and factor >= 1")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.max_retry_after = max_retry_after
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int | None = None) -> float:
        """The upper bound of the jittered delay for ``attempt`` (default: the next)."""
        n = self.attempt if attempt is None else attempt
        # avoid float overflow for long outages: the cap is reached long before
        return min(self.cap, self.base * self.factor ** min(max(n, 0), 64))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before attempt ``attempt`` (from 0): full jitter, ``retry_after`` as a floor."""
        d = self._rng.uniform(0.0, self.ceiling(attempt))
        if retry_after is not None and retry_after > 0:
            d = max(d, min(retry_after, self.max_retry_after))
        return d

    def next_delay(self, retry_after: float | None = None) -> float:
        """Delay in seconds before the next attempt (full jitter, Retry-After floor)."""
        d = self.delay(self.attempt, retry_after)
        self.attempt += 1
        return d

    def reset(self) -> None:
        """Forget past attempts (the connection was healthy)."""
        self.attempt = 0


async def retry_until_stopped(
    op: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    backoff: Backoff,
    *,
    error: Exception | None = None,
    on_retry: Callable[[Failure], None] | None = None,
) -> bool:
    """Run ``op`` until it succeeds (True) or ``stop`` is set (False).

    ``error`` is a failure of ``op`` seen already (the first try is then a
    retry). Only what :func:`ssmd.errors.classify` calls RETRYABLE is tried
    again, after ``backoff``'s delay (cut short by ``stop``); anything else is
    raised as it is, so a bug ends the caller instead of looping.
    ``on_retry`` hears of every failure before its delay.
    """
    while True:
        if error is not None:
            failure = classify(error)
            if failure.cls is not ErrorClass.RETRYABLE:
                raise error
            if on_retry is not None:
                on_retry(failure)
            if stop.is_set():
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.next_delay(failure.retry_after))
            if stop.is_set():
                return False
        try:
            await op()
        except Exception as exc:
            error = exc
        else:
            return True
