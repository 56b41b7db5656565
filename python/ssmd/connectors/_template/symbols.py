"""Template resolution (phase 1: symbols).

Resolve what the user named (``--symbols``, ``--all``) into the ids the
venue's socket wants, two ways that must agree for the same universe:

* :func:`discover`, through the venue's REST API (:func:`rest_get` retries
  and honours 429 Retry-After), used when ``DATABASE_URL`` is not set;
* :func:`from_secmaster`, through the secmaster (the venue's table, added
  by a migration and filled by its sync; read with
  :meth:`SecmasterReader.fetch`), used when it is.

Explicit ids need no lookup, from either source.
"""

from __future__ import annotations

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique
from ssmd.connectors.secmaster import SecmasterReader

__all__ = ["discover", "from_secmaster"]


async def discover(rest_url: str, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
    """``--symbols`` as given; ``--all`` from ``GET {rest_url}/instruments``."""
    if not query.all:
        return Resolution(instruments=unique(query.symbols))
    body = await rest_get(client, f"{rest_url.rstrip('/')}/instruments")
    ids = [str(x["id"]) for x in body.get("instruments", []) if isinstance(x, dict)]
    return Resolution(instruments=unique(ids))


async def from_secmaster(query: InstrumentQuery, source: SecmasterReader) -> Resolution:
    """``--symbols`` as given; ``--all`` the venue's active rows of the ``instruments`` view."""
    if not query.all:
        return Resolution(instruments=unique(query.symbols))
    rows = await source.fetch(
        "SELECT symbol FROM instruments WHERE venue = $1 AND status = 'active' ORDER BY symbol",
        "template",
    )
    return Resolution(instruments=unique(str(r["symbol"]) for r in rows))
