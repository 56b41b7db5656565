"""Kraken Futures products from REST ``/instruments`` (sheet section 5.1).

Explicit product ids (``PF_XBTUSD``) need no lookup (upper-cased: older
responses used lower case); ``--all`` takes every tradeable, unexpired
instrument. A secmaster source (later issue) returns the same
:class:`~ssmd.connectors.base.Resolution`.
"""

from __future__ import annotations

from typing import Any

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique
from ssmd.errors import ConfigError

__all__ = ["discover", "products_from_rest"]


def products_from_rest(body: Any) -> list[str]:
    """Tradeable, unexpired product ids of an ``/instruments`` response."""
    if not isinstance(body, dict) or body.get("result") not in (None, "success"):
        err = body.get("error") or body.get("errors") if isinstance(body, dict) else body
        raise ConfigError(f"kraken-futures instruments: {err}")
    out = []
    for rec in body.get("instruments") or []:
        if not isinstance(rec, dict) or not rec.get("symbol"):
            continue
        if rec.get("tradeable", True) and not rec.get("isExpired", False):
            out.append(str(rec["symbol"]).upper())
    return out


async def discover(rest_url: str, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
    """``--symbols`` as given (upper case); ``--all`` from the instruments list."""
    if not query.all:
        return Resolution(instruments=unique(s.upper() for s in query.symbols))
    body = await rest_get(client, f"{rest_url.rstrip('/')}/instruments")
    return Resolution(instruments=unique(products_from_rest(body)))
