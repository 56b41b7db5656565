"""The HTTP side of a sync: one pooled httpx client per venue.

:class:`VenueClient` spaces requests to the venue's rate, retries 429, 5xx,
timeouts, connection errors and unreadable pages with the shared full-jitter
backoff (:class:`ssmd.runtime.backoff.Backoff`), and honours ``Retry-After``
(:func:`ssmd.errors.parse_retry_after`). A 429 (or a 503 with ``Retry-After``) pauses
*every* request to that venue until the wait has passed, not just the one
that got it. :func:`cursor_pages` walks cursor pagination and stops with
:class:`CursorError` when the venue hands back a cursor it already gave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from types import TracebackType
from typing import Any

import httpx
import orjson

from ssmd.errors import ConnectorError, parse_retry_after
from ssmd.runtime.backoff import Backoff
from ssmd.secmaster.config import VenueApi

__all__ = [
    "CursorError",
    "HttpStatusError",
    "Params",
    "VenueClient",
    "VenueUnreachable",
    "cursor_pages",
]

log = logging.getLogger("ssmd.secmaster")

Params = Sequence[tuple[str, str | int]]
#: inspects a decoded body; returns a reason to retry, or None when it is usable
Check = Callable[[Any], str | None]


class VenueUnreachable(ConnectorError):
    """Every attempt to reach the venue failed to connect: the whole sync stops."""

    kind = "unreachable"


class HttpStatusError(ConnectorError):
    """The venue answered a 4xx other than 429, which asking again will not fix."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class CursorError(ConnectorError):
    """A paginated listing handed back a cursor it had already given."""

    kind = "cursor"


def _snippet(content: bytes, limit: int = 80) -> str:
    text = content[:limit].decode("utf-8", "replace")
    return " ".join(text.split())


class VenueClient:
    """Rate-limited, retrying JSON GETs to one venue, over one connection pool."""

    def __init__(self, api: VenueApi, *, transport: httpx.AsyncBaseTransport | None = None):
        self.api = api
        self.requests = 0
        self.retries = 0
        self.throttled = 0
        self._interval = 1.0 / api.rate if api.rate > 0 else 0.0
        self._next_slot = 0.0
        self._resume_at = 0.0
        self._gate = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(api.concurrency)
        self._backoff = Backoff(
            base=api.backoff, cap=max(30.0, api.backoff), max_retry_after=api.max_retry_after
        )
        self._client = httpx.AsyncClient(
            base_url=api.base_url + "/",
            timeout=httpx.Timeout(api.timeout, connect=min(api.timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=api.concurrency, max_keepalive_connections=api.concurrency
            ),
            headers={"Accept": "application/json", "User-Agent": "ssmd-secmaster"},
            follow_redirects=True,
            transport=transport,
        )

    async def __aenter__(self) -> VenueClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def pause(self, seconds: float) -> None:
        """Hold every request to this venue for ``seconds`` from now."""
        loop = asyncio.get_running_loop()
        self._resume_at = max(self._resume_at, loop.time() + seconds)

    async def _wait_turn(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._gate:
            while True:
                now = loop.time()
                wait = max(self._resume_at, self._next_slot) - now
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._next_slot = now + self._interval

    async def get_json(self, path: str, params: Params = (), *, check: Check | None = None) -> Any:
        """GET ``path`` (relative to the base URL) and return the decoded JSON body.

        Raises :class:`ssmd.errors.ConnectorError` on a non-retryable status
        (4xx other than 429) or when every attempt failed.
        """
        venue, rel = self.api.venue, path.lstrip("/")
        problem = ""
        unreachable = False
        for attempt in range(1, self.api.attempts + 1):
            await self._wait_turn()
            retry_after: float | None = None
            self.requests += 1
            try:
                async with self._in_flight:
                    resp = await self._client.get(rel, params=list(params))
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                unreachable = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            else:
                unreachable = False
                status = resp.status_code
                if status == 429 or status >= 500:
                    retry_after = parse_retry_after(resp.headers.get("retry-after"))
                    if retry_after is not None:
                        retry_after = min(retry_after, self.api.max_retry_after)
                    problem = f"HTTP {status}"
                    if status == 429:
                        self.throttled += 1
                        self.pause(self._backoff.delay(attempt - 1, retry_after))
                    elif retry_after is not None:
                        self.pause(retry_after)
                elif status >= 400:
                    raise HttpStatusError(
                        f"{venue} GET /{rel}: HTTP {status}: {_snippet(resp.content)}", status
                    )
                else:
                    try:
                        body = orjson.loads(resp.content)
                    except orjson.JSONDecodeError:
                        ctype = resp.headers.get("content-type", "?").split(";")[0]
                        problem = f"not a JSON page ({ctype}: {_snippet(resp.content, 40)!r})"
                    else:
                        why = check(body) if check is not None else None
                        if why is None:
                            return body
                        problem = why
            if attempt == self.api.attempts:
                break
            delay = self._backoff.delay(attempt - 1, retry_after)
            self.retries += 1
            log.info(
                "%s GET /%s: %s; retry %d/%d in %.1fs",
                venue,
                rel,
                problem,
                attempt,
                self.api.attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)
        if unreachable:
            raise VenueUnreachable(
                f"{venue} API unreachable at {self.api.base_url}: {problem}"
                f" (gave up after {self.api.attempts} attempts)"
            )
        raise ConnectorError(
            f"{venue} GET /{rel}: {problem} (gave up after {self.api.attempts} attempts;"
            f" base URL {self.api.base_url})"
        )


async def cursor_pages(
    client: VenueClient,
    path: str,
    params: Params,
    *,
    items_key: str,
    cursor_param: str,
    cursor_key: str,
    max_pages: int = 1_000_000,
) -> AsyncGenerator[list[Any], None]:
    """Yield the item lists of a cursor-paginated listing, page by page.

    The first request carries no cursor; each next one passes the previous
    response's ``cursor_key`` as ``cursor_param`` and is sent before the page
    is handed to the caller, so fetching overlaps the caller's work. An empty
    or missing cursor ends the listing. Close the iterator (``aclosing``) when
    leaving it early, which cancels the request in flight. A cursor already seen in this listing raises
    :class:`CursorError` (the venue would serve the same pages forever).
    """

    def check(body: Any) -> str | None:
        if not isinstance(body, dict):
            return f"expected a JSON object, got {type(body).__name__}"
        items = body.get(items_key)
        if items is not None and not isinstance(items, list):
            return f"{items_key!r} is a {type(items).__name__}, not a list"
        nxt = body.get(cursor_key)
        if nxt is not None and not isinstance(nxt, str):
            return f"{cursor_key!r} is a {type(nxt).__name__}, not a string"
        return None

    def fetch(cursor: str | None) -> asyncio.Future[Any]:
        query = [*params, (cursor_param, cursor)] if cursor else list(params)
        return asyncio.ensure_future(client.get_json(path, query, check=check))

    cursor: str | None = None
    seen: set[str] = set()
    pending = fetch(None)
    try:
        for page in range(1, max_pages + 1):
            body = await pending
            nxt = body.get(cursor_key)
            if nxt and (nxt in seen or nxt == cursor):
                raise CursorError(
                    f"{client.api.venue} GET {path}: the cursor did not advance after page {page}"
                    f" ({cursor_param}={nxt[:40]!r} again); stopped this listing"
                )
            if nxt:  # ask for the next page while the caller works on this one
                seen.add(nxt)
                cursor = nxt
                pending = fetch(nxt)
            yield body.get(items_key) or []
            if not nxt:
                return
        raise CursorError(f"{client.api.venue} GET {path}: more than {max_pages} pages; stopped")
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
