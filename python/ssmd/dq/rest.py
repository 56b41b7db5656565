"""A venue's own trade history over REST, for ``ssmd dq trades --rest-url``.

Requests go through the secmaster's HTTP client
(:class:`ssmd.secmaster.http.VenueClient`): spaced to a rate, retried on 429,
5xx, timeouts and pages that are not JSON with the shared full-jitter
backoff, ``Retry-After`` honoured; what still fails is one
:class:`~ssmd.errors.ConnectorError` line, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

from ssmd.errors import ConfigError, ConnectorError
from ssmd.secmaster.config import VenueApi
from ssmd.secmaster.http import VenueClient, cursor_pages
from ssmd.types import Venue

__all__ = ["rest_trades"]

MAX_PAGES = 1000
PATH = "markets/trades"


def rest_trades(
    venue: str | Venue,
    rest_url: str,
    instrument: str,
    date: dt.date,
    *,
    attempts: int = 5,
    backoff: float = 0.5,
    rate: float = 10.0,
) -> list[dict[str, Any]]:
    """Trades of ``instrument`` on ``date`` from the venue's REST API (Kalshi:
    ``GET {rest_url}/markets/trades``, paged by cursor), as ``{"trade_id", ...}``.

    ``attempts`` per page, the first ``backoff`` delay (s) and the request
    ``rate`` (per second) are the secmaster client's.
    """
    v = Venue.parse(venue)
    if v is not Venue.KALSHI:
        raise ConfigError(
            f"--rest-url: comparing with the REST trade history is done for kalshi, not {v.value}"
        )
    api = VenueApi(
        venue=v.value,
        base_url=rest_url.rstrip("/"),
        rate=rate,
        concurrency=1,
        attempts=attempts,
        backoff=backoff,
    )
    start = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc).timestamp())
    params: list[tuple[str, str | int]] = [
        ("ticker", instrument),
        ("min_ts", start),
        ("max_ts", start + 86_399),
        ("limit", 1000),
    ]
    return asyncio.run(_kalshi_trades(api, params))


async def _kalshi_trades(
    api: VenueApi, params: list[tuple[str, str | int]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with VenueClient(api) as client:
        pages = cursor_pages(
            client,
            PATH,
            params,
            items_key="trades",
            cursor_param="cursor",
            cursor_key="cursor",
            max_pages=MAX_PAGES,
        )
        async with contextlib.aclosing(pages):
            async for page in pages:
                for trade in page:
                    if not isinstance(trade, dict) or trade.get("trade_id") is None:
                        raise ConnectorError(
                            f"{api.venue} GET /{PATH}: a trade without a trade_id"
                            f" ({str(trade)[:80]!r}; base URL {api.base_url})"
                        )
                    out.append(trade)
    return out
