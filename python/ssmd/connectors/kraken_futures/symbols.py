"""Kraken Futures products from REST ``/instruments`` or the secmaster (sheet section 5.1).

Explicit product ids (``PF_XBTUSD``) need no lookup (upper-cased: older
responses used lower case); ``--all`` takes every tradeable, unexpired
instrument.

:func:`from_secmaster` (when ``DATABASE_URL`` is set) returns the same
:class:`~ssmd.connectors.base.Resolution`: explicit ids as given, without
a query, and for ``--all`` the perpetuals of the secmaster's ``pairs``
table that are tradeable and unexpired (status ``online``, ``post_only`` or
``suspended``; REST cannot see a suspension either). The secmaster stores
no dated futures (docs/secmaster.md), so ``--all`` through it is the
perpetuals only.
"""

from __future__ import annotations

from typing import Any

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique
from ssmd.connectors.secmaster import SecmasterReader
from ssmd.errors import ConfigError

__all__ = ["ACTIVE_STATUSES", "discover", "from_secmaster", "products_from_rest"]


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


def _explicit(query: InstrumentQuery) -> Resolution:
    return Resolution(instruments=unique(s.upper() for s in query.symbols))


async def discover(rest_url: str, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
    """``--symbols`` as given (upper case); ``--all`` from the instruments list."""
    if not query.all:
        return _explicit(query)
    body = await rest_get(client, f"{rest_url.rstrip('/')}/instruments")
    return Resolution(instruments=unique(products_from_rest(body)))


# -- the secmaster -------------------------------------------------------------

#: perpetual statuses (secmaster sync) of tradeable, unexpired instruments
ACTIVE_STATUSES = ("online", "post_only", "suspended")

# ``suspended`` wins over ``offline`` in the sync's status, hence the raw ``tradeable``
_ACTIVE_SQL = """
SELECT pair
  FROM pairs
 WHERE market_type = 'perpetual' AND status = ANY($1::text[])
   AND (raw ->> 'tradeable') IS DISTINCT FROM 'false'
 ORDER BY pair
"""
_ANY_SQL = "SELECT pair FROM pairs WHERE market_type = 'perpetual' LIMIT 1"


async def from_secmaster(query: InstrumentQuery, source: SecmasterReader) -> Resolution:
    """:func:`discover`'s resolution; ``--all`` from the secmaster's perpetuals."""
    if not query.all:
        return _explicit(query)
    rows = await source.fetch(_ACTIVE_SQL, list(ACTIVE_STATUSES))
    if not rows and not await source.fetch(_ANY_SQL):
        raise ConfigError(
            "kraken-futures: the secmaster has no perpetuals (run `ssmd kraken sync` first)"
        )
    return Resolution(instruments=unique(str(r["pair"]).upper() for r in rows))
