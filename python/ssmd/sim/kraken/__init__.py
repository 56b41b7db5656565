"""Kraken spot WebSocket v2 and REST ``AssetPairs`` (protocol sheet ``kraken.md``).

WebSocket ``/v2``: ``status`` on connect; ``subscribe``/``unsubscribe`` for
``ticker`` (``event_trigger`` ``trades`` or ``bbo``), ``trade``, ``book``
(depth 10/25/100/500/1000, snapshot then updates with the CRC32 of the book
this module keeps) and ``instrument``; one ack per symbol; errors for v1
names and unknown symbols; ``heartbeat`` once a second when nothing else was
sent; ``{"method":"ping"}`` answered with ``pong``. Numbers are JSON numbers
with trailing zeros trimmed, so a checksum must be computed with the pair's
precisions (``pair_decimals``/``lot_decimals`` from REST, or the
``instrument`` channel), never from the wire text.

REST ``GET /0/public/AssetPairs`` (``pair=`` filter) lists the universe.

Modules: ``universe`` (the instruments), ``rest`` (the REST listings and the
upgrade check), ``book`` (one instrument's state on a connection), ``session`` (one
WebSocket connection, and the venue class that makes it).
"""

from __future__ import annotations

from ssmd.sim.kraken.book import L2Book
from ssmd.sim.kraken.rest import KrakenRest
from ssmd.sim.kraken.session import KrakenSession, KrakenVenue
from ssmd.sim.kraken.universe import Pair

__all__ = ["KrakenRest", "KrakenSession", "KrakenVenue", "L2Book", "Pair"]
