"""Polymarket connector: the CLOB market channel (sheet ``polymarket.md``)."""

from __future__ import annotations

from typing import ClassVar

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, VenueConnector
from ssmd.connectors.polymarket import symbols
from ssmd.connectors.polymarket.config import PolymarketConfig
from ssmd.connectors.polymarket.subscriptions import PolymarketSession
from ssmd.connectors.secmaster import SecmasterReader

__all__ = ["PolymarketConnector"]


class PolymarketConnector(VenueConnector[PolymarketConfig]):
    """Every market-channel event type; ``custom_feature_enabled`` for the custom ones.

    The venue has no per-channel subscription: ``--channels`` without any of
    ``best_bid_ask``, ``new_market``, ``market_resolved`` turns the custom
    features off; other event types still arrive and are archived.
    """

    venue: ClassVar[str] = "polymarket"
    all_channels: ClassVar[tuple[str, ...]] = (
        "book",
        "price_change",
        "last_trade_price",
        "best_bid_ask",
        "tick_size_change",
        "new_market",
        "market_resolved",
    )
    default_channels: ClassVar[tuple[str, ...]] = all_channels
    config_class = PolymarketConfig
    session_class = PolymarketSession
    cdc_tables = ("polymarket_conditions", "polymarket_tokens")

    async def discover(self, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
        return await symbols.discover(self.config, query, client)

    async def lookup(self, query: InstrumentQuery, source: SecmasterReader) -> Resolution:
        return await symbols.from_secmaster(query, source)
