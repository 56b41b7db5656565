"""The simulators' small REST side: requests, JSON responses, paging, throttling.

REST is served by the same picows server as the WebSocket (picows hands
every HTTP request to the listener factory first; a non-101 answer is sent
as a plain HTTP response with ``Connection: close``), so one port carries
both. Only ``GET`` is served, as the venues' public market-data endpoints.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from picows import WSUpgradeRequest, WSUpgradeResponse

__all__ = [
    "REMOVED",
    "HttpError",
    "Request",
    "Response",
    "RestRecords",
    "TokenBucket",
    "decode_cursor",
    "encode_cursor",
    "json_response",
    "page",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One HTTP request as the venue handlers see it."""

    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    #: the request target as sent (path and query)
    target: str = ""

    @classmethod
    def from_upgrade(cls, req: WSUpgradeRequest) -> Request:
        raw = req.path.decode("latin-1")
        parts = urlsplit(raw)
        return cls(
            unquote(parts.path),
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in req.headers.items()},
            raw,
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """Every value of ``name``, comma-separated values split."""
        return [x for v in self.query.get(name, []) for x in v.split(",") if x]

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        """An integer parameter in ``[lo, hi]``; :class:`HttpError` 400 otherwise."""
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise HttpError(400, f"invalid {name}: {raw!r}") from None
        if not lo <= value <= hi:
            raise HttpError(400, f"{name} must be between {lo} and {hi}")
        return value

    def bool_arg(self, name: str) -> bool | None:
        raw = self.arg(name)
        if raw is None or raw == "":
            return None
        return raw.lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"

    def to_picows(self) -> Any:
        """The picows response object (HTTP, never an upgrade)."""
        headers = [("Content-Type", self.content_type), *self.headers]
        if self.status >= 400:
            return WSUpgradeResponse.create_error_response(self.status, self.body, headers)
        return WSUpgradeResponse.create_ok_response(self.body, headers)


class HttpError(Exception):
    """Raised by handlers for a 4xx answer; the venue shapes the body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(
    obj: object, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> Response:
    return Response(status, orjson.dumps(obj), tuple(headers))


def encode_cursor(offset: int) -> str:
    """An opaque cursor for position ``offset`` of a listing."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor of :func:`encode_cursor` names; 400 when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, num = raw.partition(":")
        if tag != "o":
            raise ValueError(raw)
        value = int(num)
    except ValueError:
        raise HttpError(400, f"invalid cursor: {cursor!r}") from None
    if value < 0:
        raise HttpError(400, f"invalid cursor: {cursor!r}")
    return value


def page(items: Sequence[T], offset: int, limit: int) -> tuple[list[T], int | None]:
    """``items[offset:offset+limit]`` and the next offset (``None`` at the end)."""
    chunk = list(items[offset : offset + limit])
    nxt = offset + limit
    return chunk, (nxt if nxt < len(items) else None)


class TokenBucket:
    """Requests per second with a burst; ``rate <= 0`` never throttles."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.tokens = self.burst
        self._clock = clock
        self._last = clock()

    def take(self) -> float:
        """0 when the request may go; otherwise seconds until a token is free."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RestRecords:
    """What a test (or a user of the simulator) changes in a venue's REST listings.

    A listing is named as its venue names it (Kalshi ``markets``, ``events``,
    ``series``; Kraken ``AssetPairs``; Kraken Futures ``instruments``,
    ``tickers``; Polymarket ``markets``); a record by its venue id. The venue's
    REST handlers pass every record through :meth:`record` and every first
    page through :meth:`head`, and page with :meth:`cursor`:

    * ``change(listing, id, field=value, …)``: the record shows these values
      (``value`` :data:`REMOVED` drops the field);
    * ``hide(listing, id)`` / ``show``: the venue stops (or starts again)
      listing the record;
    * ``add(listing, item, …)``: raw items (broken ones, say) at the head of
      the listing's first page;
    * ``stuck_cursor``: a paginated listing hands back the cursor it was given.
    """

    def __init__(self) -> None:
        self._changes: dict[tuple[str, str], dict[str, Any]] = {}
        self._hidden: set[tuple[str, str]] = set()
        self._extra: dict[str, list[Any]] = {}
        self.stuck_cursor = False

    def change(self, listing: str, key: str, **fields: Any) -> None:
        self._changes.setdefault((listing, key), {}).update(fields)

    def hide(self, listing: str, key: str) -> None:
        self._hidden.add((listing, key))

    def show(self, listing: str, key: str) -> None:
        self._hidden.discard((listing, key))

    def add(self, listing: str, *items: Any) -> None:
        self._extra.setdefault(listing, []).extend(items)

    def listed(self, listing: str, key: str) -> bool:
        return (listing, key) not in self._hidden

    def record(self, listing: str, key: str, rec: dict[str, Any]) -> dict[str, Any]:
        """``rec`` with the changes made to it."""
        changes = self._changes.get((listing, key))
        if not changes:
            return rec
        out = {**rec, **changes}
        return {k: v for k, v in out.items() if v is not REMOVED}

    def head(self, listing: str, items: list[Any]) -> list[Any]:
        """A first page with the added items in front."""
        extra = self._extra.get(listing)
        return [*extra, *items] if extra else items

    def cursor(self, given: str | None, nxt: str | None) -> str | None:
        """The cursor a page hands back: ``nxt``, or ``given`` again when stuck."""
        return given if self.stuck_cursor and given else nxt


#: a :meth:`RestRecords.change` value that removes the field
REMOVED: Any = object()
