"""Polymarket CLOB market channel and Gamma/CLOB REST (protocol sheet ``polymarket.md``).

WebSocket ``/ws/market``: the client's first frame
``{"assets_ids":[…],"type":"market","custom_feature_enabled":true}`` (no
ack), later ``{"assets_ids":[…],"operation":"subscribe"|"unsubscribe"}``;
an initial ``book`` per token (grouped into array frames of several books,
some without ``event_type``, as the real server sends them), then
``price_change`` (current schema), ``last_trade_price`` followed by the
re-sent ``book``, ``tick_size_change`` when a book crosses 0.96/0.04, and
with custom features ``best_bid_ask``, ``new_market`` and
``market_resolved``. Text ``PING`` is answered with text ``PONG``. Past 500
assets on one connection the excess gets its initial book but no updates
(what was observed live). Each condition has one book in YES terms; the NO
token's book is its mirror (NO bid at 1 - YES ask).

REST (Gamma at the root): ``/markets/keyset`` (``after_cursor`` →
``next_cursor``, absent on the last page), ``/markets`` (legacy
``limit``/``offset``, a bare array), ``/events/keyset``, ``/events``; CLOB
under ``/clob``: ``/clob/markets`` (``next_cursor``, ``LTE=`` at the end);
the Data API under ``/data``: ``/data/trades`` (the trades sent, newest
first, ``limit``/``offset``), which ``ssmd dq trades --rest-url`` compares with.

Modules: ``universe`` (the instruments), ``rest`` (the REST listings and the
upgrade check), ``book`` (one instrument's state on a connection), ``session`` (one
WebSocket connection, and the venue class that makes it).
"""

from __future__ import annotations

from ssmd.sim.polymarket.rest import PolymarketRest
from ssmd.sim.polymarket.session import PolymarketSession, PolymarketVenue
from ssmd.sim.polymarket.universe import Condition

__all__ = ["Condition", "PolymarketRest", "PolymarketSession", "PolymarketVenue"]
