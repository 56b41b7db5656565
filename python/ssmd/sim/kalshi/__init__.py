"""Kalshi Trade API v2 WebSocket and REST (protocol sheet ``kalshi.md``).

WebSocket ``/trade-api/ws/v2``: the upgrade carries ``KALSHI-ACCESS-KEY``,
``-TIMESTAMP`` (ms) and ``-SIGNATURE`` (RSA-PSS SHA-256 of
``<ts>GET/trade-api/ws/v2``); with a public key configured a missing,
wrong or stale (more than ``kalshi_signature_skew`` seconds) signature gets
HTTP 401, without one every upgrade is accepted and a connection without
the key header counts as unauthenticated (``orderbook_delta`` → error 9).
Commands ``subscribe`` / ``unsubscribe`` / ``update_subscription``
(``add_markets``, ``delete_markets``, ``get_snapshot``) /
``list_subscriptions`` with ``id``; replies ``subscribed`` (one per
channel, its own ``sid``), ``ok``, ``unsubscribed`` and ``error`` with the
sheet's codes. Channels ``ticker`` (no ``seq``), ``trade``,
``orderbook_delta`` (``orderbook_snapshot`` then deltas) and
``market_lifecycle_v2`` (also ``event_lifecycle``), ``seq`` per ``sid``
from 1. The server sends a WebSocket Ping with payload ``heartbeat`` every
10 s. A reader too slow for its queue gets error 25 on every data
subscription, which is dropped.

REST ``/trade-api/v2``: ``/series`` (``category``; paged when ``limit`` is
given), ``/series/{ticker}``, ``/series/fee_changes``, ``/events`` and
``/markets`` (``cursor``, empty cursor = end, filters ``status``,
``series_ticker``, ``event_ticker``, ``tickers``), ``/events/{ticker}``,
``/markets/{ticker}``, and ``/markets/trades`` (``ticker``, ``min_ts``/``max_ts``
in seconds, ``cursor``): the trades sent on every connection, newest first,
the last 20 000 per market.

Modules: ``universe`` (the instruments), ``rest`` (the REST listings and the
upgrade check), ``book`` (one instrument's state on a connection), ``session`` (one
WebSocket connection, and the venue class that makes it).
"""

from __future__ import annotations

from ssmd.sim.kalshi.rest import KalshiRest, load_public_key, verify_signature
from ssmd.sim.kalshi.session import KalshiSession, KalshiVenue
from ssmd.sim.kalshi.universe import STATUS_FILTERS, WS_PATH, Market

__all__ = [
    "STATUS_FILTERS",
    "WS_PATH",
    "KalshiRest",
    "KalshiSession",
    "KalshiVenue",
    "Market",
    "load_public_key",
    "verify_signature",
]
