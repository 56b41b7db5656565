"""The one exception tree of ssmd.

Every error ssmd raises on purpose is an :class:`SsmdError`. Subclasses also
inherit the matching standard exception, so ``except ValueError`` keeps working
for callers that do not know ssmd. The CLI turns any of them into a one-line
message and a non-zero exit.

:func:`classify` says what to do about any exception: retry, give up, or
stop (an exception it does not know is a bug, never retried).
"""

from __future__ import annotations

import enum
import sys
import time
from dataclasses import dataclass

__all__ = [
    "ClassifiedError",
    "ConfigError",
    "ConnectorError",
    "ErrorClass",
    "Failure",
    "ParseError",
    "SinkError",
    "SsmdError",
    "classify",
    "http_failure",
    "parse_retry_after",
]


class SsmdError(Exception):
    """Root of every error raised by ssmd."""

    #: stable machine-readable kind, e.g. ``"config"``
    kind: str = "ssmd"


class ParseError(SsmdError, ValueError):
    """One strict parse failed (batch calls report bad frames as results instead)."""

    kind = "parse"


class SinkError(SsmdError, OSError):
    """Writing or reading the archive (or another sink) failed, or a server is not answering.

    NATS, PostgreSQL or Redis that cannot be reached is exit status 1; a bad URL
    for one is a ``ConfigError`` (exit status 2).
    """

    kind = "sink"


class ConfigError(SsmdError, ValueError):
    """A setting, flag, key file or environment variable is missing or invalid."""

    kind = "config"


class ConnectorError(SsmdError, ConnectionError):
    """A venue connection failed in a way the supervisor has to handle."""

    kind = "connector"


# -- what to do about an error (STYLE item 14) ----------------------------------
#
# The supervisor, the REST helpers and the bus decide from the class alone,
# never from message text. An exception this module does not know is a bug:
# it is FATAL, so a bug in venue code ends the service with its traceback
# instead of hiding in a reconnect loop.


class ErrorClass(enum.Enum):
    """What to do about an error."""

    #: try again after a backoff delay (network errors, closes, 5xx, 429)
    RETRYABLE = "retryable"
    #: the same request will fail again (401/403/404, bad URL, bad settings): give up
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


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date).

    ``None`` when absent or unreadable; ``0.0`` for a date in the past or a
    negative delta.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            import email.utils  # only for an HTTP date, rarely

            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs or secs < 0:  # NaN or in the past
        return 0.0
    return secs


#: HTTP statuses that a retry cannot fix
NON_RETRYABLE_STATUS = frozenset((400, 401, 403, 404, 405, 410))


def http_failure(status: int, retry_after: str | None, what: str) -> Failure:
    """The class of an HTTP answer ``status`` (with its ``Retry-After`` header, if any)."""
    ra = parse_retry_after(retry_after)
    if status in NON_RETRYABLE_STATUS:
        return Failure(ErrorClass.NON_RETRYABLE, f"{what}: HTTP {status}", ra, status)
    return Failure(ErrorClass.RETRYABLE, f"{what}: HTTP {status}", ra, status)


def classify(exc: BaseException) -> Failure:
    """The class of an exception raised by connecting, reading, REST or publishing.

    Known network and venue failures are RETRYABLE; bad settings, refused
    requests and other ssmd errors NON_RETRYABLE; a broken sink FATAL.
    Anything else (``AttributeError``, ``TypeError``, ``KeyError``, …) is a
    bug and FATAL.
    """
    from picows import WSError, WSHandshakeError, WSInvalidURL

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
            headers = getattr(resp, "headers", None)
            retry_after = headers.get("Retry-After") if headers is not None else None
            return http_failure(int(resp.status), retry_after, "upgrade refused")
        return Failure(ErrorClass.RETRYABLE, f"handshake failed: {exc}")
    if isinstance(exc, WSError):
        return Failure(ErrorClass.RETRYABLE, f"{type(exc).__name__}: {exc}")
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        r = exc.response
        return http_failure(r.status_code, r.headers.get("Retry-After"), "REST")
    if isinstance(exc, httpx.TransportError):
        return Failure(ErrorClass.RETRYABLE, f"REST: {type(exc).__name__}: {exc}")
    nats = _nats_failure(exc)
    if nats is not None:
        return nats
    # asyncio's own TimeoutError (Python 3.10) can only come from an imported asyncio
    aio = sys.modules.get("asyncio")
    timeouts = (TimeoutError,) if aio is None else (TimeoutError, aio.TimeoutError)
    if isinstance(exc, (OSError, EOFError, *timeouts)):
        return Failure(ErrorClass.RETRYABLE, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, SsmdError):  # raised on purpose, so not a bug; trying again will not help
        return Failure(ErrorClass.NON_RETRYABLE, str(exc))
    return Failure(ErrorClass.FATAL, f"{type(exc).__name__}: {exc}")


def _nats_failure(exc: BaseException) -> Failure | None:
    """The class of a nats-py error, or None when ``exc`` is not one.

    A lost, reconnecting or stale connection, a full outbound buffer, a request
    nobody answered (JetStream not up yet) and a JetStream 5xx are RETRYABLE;
    another JetStream API answer is classed by its status; any other nats-py
    error (bad subject, payload too large, refused credentials) NON_RETRYABLE.
    """
    ne = sys.modules.get("nats.errors")  # nats-py is optional: without it, no nats error
    if ne is None or not isinstance(exc, ne.Error):
        return None
    import nats.js.errors as jse

    name = f"NATS: {type(exc).__name__}: {exc}"
    if isinstance(exc, jse.APIError):
        code = exc.code or 0
        if 400 <= code < 500 and code not in (408, 429):
            return Failure(ErrorClass.NON_RETRYABLE, name, None, code)
        return Failure(ErrorClass.RETRYABLE, name, None, code or None)
    retryable = (
        ne.ConnectionClosedError,
        ne.ConnectionReconnectingError,
        ne.ConnectionDrainingError,
        ne.StaleConnectionError,
        ne.OutboundBufferLimitError,
        ne.NoRespondersError,
        ne.TimeoutError,
        ne.FlushTimeoutError,
        ne.UnexpectedEOF,
        jse.NoStreamResponseError,
        jse.ServiceUnavailableError,
    )
    if isinstance(exc, retryable):
        return Failure(ErrorClass.RETRYABLE, name)
    return Failure(ErrorClass.NON_RETRYABLE, name)
