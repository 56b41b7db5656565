"""Template discovery (phase 1: symbols).

Resolve what the user named (``--symbols``, ``--all``) into the ids the
venue's socket wants, through its REST API (:func:`rest_get` retries and
honours 429 Retry-After). Explicit ids need no lookup. A secmaster source
(later issue) returns the same :class:`Resolution`.
"""

from __future__ import annotations

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique

__all__ = ["discover"]


async def discover(rest_url: str, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
    """``--symbols`` as given; ``--all`` from ``GET {rest_url}/instruments``."""
    if not query.all:
        return Resolution(instruments=unique(query.symbols))
    body = await rest_get(client, f"{rest_url.rstrip('/')}/instruments")
    ids = [str(x["id"]) for x in body.get("instruments", []) if isinstance(x, dict)]
    return Resolution(instruments=unique(ids))
