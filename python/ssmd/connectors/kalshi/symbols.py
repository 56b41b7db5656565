"""Kalshi markets and series categories from REST (sheet ``kalshi.md`` section 5).

* ``--symbols``: market tickers as given (no lookup);
* ``--category C``: the series of that category (``GET /series?category=``,
  case-insensitive), then their open markets (``GET /markets?series_ticker=
  &status=open``, cursor pagination, an empty cursor ends);
* ``--all``: no list at all: ticker and trade are subscribed for every
  market (one global subscription per channel on connection 0).

Subjects carry the series category (DESIGN section 3): one ``GET /series``
gives the mapping; when REST cannot be reached for ``--symbols`` it is
skipped with a warning (category ``unknown``). A secmaster source (later
issue) returns the same :class:`~ssmd.connectors.base.Resolution`.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique
from ssmd.connectors.kalshi.config import KalshiConfig
from ssmd.errors import ConfigError, SsmdError

__all__ = ["discover", "series_categories"]

log = logging.getLogger("ssmd.connect")


def series_categories(body: Any) -> dict[str, str]:
    """``{series ticker: category}`` of a ``/series`` response."""
    if not isinstance(body, dict):
        raise ConfigError("kalshi /series: unexpected response")
    out = {}
    for s in body.get("series") or []:
        if isinstance(s, dict) and s.get("ticker") and s.get("category"):
            out[str(s["ticker"])] = str(s["category"])
    return out


async def _series(client: httpx.AsyncClient, root: str, attempts: int) -> dict[str, str]:
    out: dict[str, str] = {}
    cursor = None
    while True:
        params = {"cursor": cursor} if cursor else None
        body = await rest_get(client, f"{root}/series", params, attempts=attempts)
        out.update(series_categories(body))
        cursor = body.get("cursor") if isinstance(body, dict) else None
        if not cursor:
            return out


async def _open_markets(
    client: httpx.AsyncClient, root: str, series: str, page_size: int
) -> list[str]:
    out: list[str] = []
    cursor = ""
    while True:
        params: dict[str, Any] = {"series_ticker": series, "status": "open", "limit": page_size}
        if cursor:
            params["cursor"] = cursor
        body = await rest_get(client, f"{root}/markets", params)
        if not isinstance(body, dict):
            raise ConfigError("kalshi /markets: unexpected response")
        out.extend(str(m["ticker"]) for m in body.get("markets") or [] if m.get("ticker"))
        cursor = body.get("cursor") or ""
        if not cursor:
            return out


async def discover(
    cfg: KalshiConfig, query: InstrumentQuery, client: httpx.AsyncClient
) -> Resolution:
    """Markets to subscribe (or a global subscription) and the series categories."""
    root = cfg.rest_url.rstrip("/")
    if query.categories:
        categories = await _series(client, root, attempts=5)
        wanted = {c.lower() for c in query.categories}
        series = sorted(s for s, c in categories.items() if c.lower() in wanted)
        if not series:
            known = sorted({c for c in categories.values()})
            raise ConfigError(
                f"kalshi: no series in categories {', '.join(query.categories)} "
                f"(known: {', '.join(known[:20])})"
            )
        markets: list[str] = list(query.symbols)
        for s in series:
            markets.extend(await _open_markets(client, root, s, cfg.page_size))
        log.info("kalshi: %d series, %d open markets", len(series), len(markets))
        return Resolution(instruments=unique(markets), categories=categories)
    try:
        categories = await _series(client, root, attempts=2)
    except SsmdError as exc:
        if query.all:
            raise
        log.warning("kalshi: series categories unavailable (%s); subjects say 'unknown'", exc)
        categories = {}
    if query.all:
        return Resolution(categories=categories, global_subscription=True)
    return Resolution(instruments=unique(query.symbols), categories=categories)
