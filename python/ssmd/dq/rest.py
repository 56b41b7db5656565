"""A venue's own trade history over REST, for ``ssmd dq trades --rest-url``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from ssmd.errors import ConfigError, ConnectorError

__all__ = ["rest_trades"]

MAX_PAGES = 1000


def rest_trades(venue: str, rest_url: str, instrument: str, date: dt.date) -> list[dict[str, Any]]:
    """Trades of ``instrument`` on ``date`` from the venue's REST API (Kalshi:
    ``GET {rest_url}/markets/trades``, paged by cursor), as ``{"trade_id", ...}``."""
    if venue != "kalshi":
        raise ConfigError(
            f"--rest-url: comparing with the REST trade history is done for kalshi, not {venue}"
        )
    start = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc).timestamp())
    params: dict[str, Any] = {
        "ticker": instrument,
        "min_ts": start,
        "max_ts": start + 86_399,
        "limit": 1000,
    }
    out: list[dict[str, Any]] = []
    url = rest_url.rstrip("/") + "/markets/trades"
    with httpx.Client(timeout=30) as client:
        for _ in range(MAX_PAGES):
            try:
                r = client.get(url, params=params)
            except httpx.HTTPError as exc:
                raise ConnectorError(f"{url}: {exc}") from None
            if r.status_code != 200:
                raise ConnectorError(f"{url}: HTTP {r.status_code} {r.text[:200]}")
            body = r.json()
            out.extend(body.get("trades") or [])
            cursor = body.get("cursor")
            if not cursor:
                return out
            params["cursor"] = cursor
    raise ConnectorError(f"{url}: more than {MAX_PAGES} pages")
