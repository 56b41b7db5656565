"""Kraken Futures WebSocket v1 and REST v3 (protocol sheet ``kraken-futures.md``).

WebSocket ``/ws/v1``: ``{"event":"info","version":1}`` on connect;
``subscribe``/``unsubscribe`` per feed with ``product_ids`` answered by one
``subscribed``/``unsubscribed`` per request; ``error`` (``Invalid product
id``, ``Json Error``) and ``alert`` (invalid or authenticated feed) for bad
requests; ``ticker`` (a full ticker on subscribe, then at most one per
product per second), ``trade`` (``trade_snapshot`` newest first, then
trades with ``seq`` per product), ``book`` (``book_snapshot`` then one-level
``book`` deltas with ``seq``), the ``heartbeat`` feed, and the ``challenge``
reply. A connection that sends no WebSocket Ping for 60 s is closed.

REST: ``GET /derivatives/api/v3/instruments``, ``/tickers`` and
``/tickers/{symbol}``.

Modules: ``universe`` (the instruments), ``rest`` (the REST listings and the
upgrade check), ``book`` (one instrument's state on a connection), ``session`` (one
WebSocket connection, and the venue class that makes it).
"""

from __future__ import annotations

from ssmd.sim.kraken_futures.rest import KrakenFuturesRest
from ssmd.sim.kraken_futures.session import KrakenFuturesSession, KrakenFuturesVenue
from ssmd.sim.kraken_futures.universe import Product

__all__ = ["KrakenFuturesRest", "KrakenFuturesSession", "KrakenFuturesVenue", "Product"]
