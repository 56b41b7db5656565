"""Kalshi markets and series categories (sheet ``kalshi.md`` section 5).

From REST (:func:`discover`):

* ``--symbols``: market tickers as given (no lookup);
* ``--category C``: the series of that category (``GET /series?category=``,
  case-insensitive), then their open markets (``GET /markets?series_ticker=
  &status=open``, cursor pagination, an empty cursor ends);
* ``--all``: no list at all: ticker and trade are subscribed for every
  market (one global subscription per channel on connection 0).

Subjects carry the series category (docs/bus.md): one ``GET /series``
gives the mapping; when REST cannot be reached for ``--symbols`` it is
skipped with a warning (category ``unknown``).

From the secmaster (:func:`from_secmaster`, when ``DATABASE_URL`` is set),
the same :class:`~ssmd.connectors.base.Resolution`: the mapping from
``series.category``, and for ``--category`` the markets whose ``status`` is
``active`` (what the REST filter ``status=open`` returns) in those series
(``markets`` → ``events.series_ticker``).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique
from ssmd.connectors.kalshi.config import KalshiConfig
from ssmd.connectors.secmaster import SecmasterReader
from ssmd.errors import ConfigError, SsmdError

__all__ = ["OPEN_STATUSES", "discover", "from_secmaster", "series_categories", "series_in"]

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


def series_in(categories: dict[str, str], query: InstrumentQuery, hint: str = "") -> list[str]:
    """The series of ``query.categories`` (any case), sorted; none is a ConfigError."""
    wanted = {c.lower() for c in query.categories}
    series = sorted(s for s, c in categories.items() if c.lower() in wanted)
    if not series:
        known = sorted({c for c in categories.values()})
        raise ConfigError(
            f"kalshi: no series in categories {', '.join(query.categories)} "
            f"(known: {', '.join(known[:20])}){hint}"
        )
    return series


async def discover(
    cfg: KalshiConfig, query: InstrumentQuery, client: httpx.AsyncClient
) -> Resolution:
    """Markets to subscribe (or a global subscription) and the series categories."""
    root = cfg.rest_url.rstrip("/")
    if query.categories:
        categories = await _series(client, root, attempts=5)
        series = series_in(categories, query)
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


# -- the secmaster -------------------------------------------------------------

#: market ``status`` values that the REST filter ``status=open`` returns (sheet pitfall 8)
OPEN_STATUSES = ("active",)

_SERIES_SQL = "SELECT ticker, category FROM series WHERE category <> '' ORDER BY ticker"

# A market's series is its event's; a market whose event is not stored (yet)
# falls back to the ticker prefix (``KXBTCD-26JUL1917`` -> ``KXBTCD``).
_OPEN_MARKETS_SQL = """
SELECT m.ticker, COALESCE(e.series_ticker, split_part(m.event_ticker, '-', 1)) AS series
  FROM markets m
  LEFT JOIN events e ON e.event_ticker = m.event_ticker
 WHERE m.status = ANY($2::text[])
   AND COALESCE(e.series_ticker, split_part(m.event_ticker, '-', 1)) = ANY($1::text[])
 ORDER BY 2, 1
"""

_SYNC_HINT = "run `ssmd secmaster sync` first"


async def from_secmaster(query: InstrumentQuery, source: SecmasterReader) -> Resolution:
    """:func:`discover`'s resolution from the ``series``, ``events`` and ``markets`` tables."""
    rows = await source.fetch(_SERIES_SQL)
    categories = {str(r["ticker"]): str(r["category"]) for r in rows}
    if query.categories:
        hint = "" if categories else f"; the secmaster has no series: {_SYNC_HINT}"
        series = series_in(categories, query, hint)
        found = await source.fetch(_OPEN_MARKETS_SQL, series, list(OPEN_STATUSES))
        markets = [*query.symbols, *(str(r["ticker"]) for r in found)]
        log.info("kalshi: %d series, %d open markets in the secmaster", len(series), len(markets))
        return Resolution(instruments=unique(markets), categories=categories)
    if not categories:
        if query.all:
            raise ConfigError(f"kalshi: the secmaster has no series: {_SYNC_HINT}")
        log.warning(
            "kalshi: the secmaster has no series categories (%s); subjects say 'unknown'",
            _SYNC_HINT,
        )
    if query.all:
        return Resolution(categories=categories, global_subscription=True)
    return Resolution(instruments=unique(query.symbols), categories=categories)
