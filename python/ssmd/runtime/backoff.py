"""Reconnect delays and the retry class of connection errors (STYLE item 14).

:class:`Backoff` gives exponential delays with full jitter
(``uniform(0, min(cap, base * factor**attempt))``) and honours a venue's
``Retry-After`` (HTTP 429/503): the delay is then at least what the venue
asked for. :func:`classify` turns an exception raised while connecting or
reading into a :class:`Failure` with its :class:`ErrorClass`; the supervisor
decides from that class alone whether to reconnect, never from message text.
"""

from __future__ import annotations

import email.utils
import enum
import random
import time
from dataclasses import dataclass

from ssmd.errors import ConfigError, ConnectorError, SinkError

__all__ = [
    "Backoff",
    "ClassifiedError",
    "ErrorClass",
    "Failure",
    "classify",
    "parse_retry_after",
]


class ErrorClass(enum.Enum):
    """What the supervisor does about an error."""

    #: reconnect after a backoff delay (network errors, closes, 5xx, 429)
    RETRYABLE = "retryable"
    #: the same request will fail again (401/403/404, bad URL): give up
    NON_RETRYABLE = "non_retryable"
    #: a bug or a broken local resource (the sink): stop the process
    FATAL = "fatal"


@dataclass(frozen=True)
class Failure:
    """A classified error: its class, a short reason and an optional Retry-After."""

    cls: ErrorClass
    reason: str
    retry_after: float | None = None
    status: int | None = None


class ClassifiedError(ConnectorError):
    """A connector error that says how to retry it (raised by venue code)."""

    def __init__(
        self, message: str, error_class: ErrorClass, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.retry_after = retry_after


class Backoff:
    """Exponential backoff with full jitter and a floor from ``Retry-After``.

    ``next_delay()`` returns the delay before the next attempt and counts the
    attempt; ``reset()`` starts over after a connection proved healthy.
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
        return min(self.cap, self.base * self.factor ** min(n, 64))

    def next_delay(self, retry_after: float | None = None) -> float:
        """Delay in seconds before the next attempt (full jitter, Retry-After floor)."""
        delay = self._rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def reset(self) -> None:
        """Forget past attempts (the connection was healthy)."""
        self.attempt = 0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs or secs < 0:  # NaN or in the past
        return 0.0
    return secs


_NON_RETRYABLE_STATUS = {400, 401, 403, 404, 405, 410}


def _http_failure(status: int, retry_after: str | None, what: str) -> Failure:
    ra = parse_retry_after(retry_after)
    if status in _NON_RETRYABLE_STATUS:
        return Failure(ErrorClass.NON_RETRYABLE, f"{what}: HTTP {status}", ra, status)
    return Failure(ErrorClass.RETRYABLE, f"{what}: HTTP {status}", ra, status)


def classify(exc: BaseException) -> Failure:
    """The retry class of an exception raised by connecting, reading or REST."""
    # picows handshake errors carry the HTTP response of the refused upgrade
    try:
        from picows import WSHandshakeError, WSInvalidURL
    except ImportError:  # pragma: no cover - picows is a dependency
        WSHandshakeError = WSInvalidURL = ()  # type: ignore[assignment,misc]
    if isinstance(exc, ClassifiedError):
        return Failure(exc.error_class, str(exc), exc.retry_after)
    if isinstance(exc, ConnectorError):
        return Failure(ErrorClass.RETRYABLE, str(exc))
    if isinstance(exc, (ConfigError, WSInvalidURL)):
        return Failure(ErrorClass.NON_RETRYABLE, str(exc))
    if isinstance(exc, SinkError):
        return Failure(ErrorClass.FATAL, str(exc))
    if isinstance(exc, WSHandshakeError):
        resp = getattr(exc, "response", None)
        if resp is not None and getattr(resp, "status", None):
            status = int(resp.status)
            headers = getattr(resp, "headers", None)
            retry_after = headers.get("Retry-After") if headers is not None else None
            return _http_failure(status, retry_after, "upgrade refused")
        return Failure(ErrorClass.RETRYABLE, f"handshake failed: {exc}")
    try:
        import httpx
    except ImportError:  # pragma: no cover
        httpx = None  # type: ignore[assignment]
    if httpx is not None:
        if isinstance(exc, httpx.HTTPStatusError):
            r = exc.response
            return _http_failure(r.status_code, r.headers.get("Retry-After"), "REST")
        if isinstance(exc, httpx.TransportError):
            return Failure(ErrorClass.RETRYABLE, f"REST: {type(exc).__name__}: {exc}")
    if isinstance(exc, (OSError, EOFError, TimeoutError)):
        return Failure(ErrorClass.RETRYABLE, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (MemoryError, SystemError)):
        return Failure(ErrorClass.FATAL, f"{type(exc).__name__}: {exc}")
    return Failure(ErrorClass.RETRYABLE, f"{type(exc).__name__}: {exc}")
