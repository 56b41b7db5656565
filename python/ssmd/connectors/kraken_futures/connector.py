"""Kraken Futures connector: WebSocket v1 public feeds (sheet ``kraken-futures.md``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, VenueConnector
from ssmd.connectors.kraken_futures import symbols
from ssmd.connectors.kraken_futures.config import KrakenFuturesConfig
from ssmd.connectors.kraken_futures.subscriptions import KrakenFuturesSession
from ssmd.connectors.secmaster import SecmasterReader

__all__ = ["KrakenFuturesConnector"]


class KrakenFuturesConnector(VenueConnector[KrakenFuturesConfig]):
    """ticker and trade feeds; ``book`` when asked (``--channels``)."""

    venue: ClassVar[str] = "kraken-futures"
    all_channels: ClassVar[tuple[str, ...]] = ("ticker", "trade", "book")
    default_channels: ClassVar[tuple[str, ...]] = ("ticker", "trade")
    config_class = KrakenFuturesConfig
    session_class = KrakenFuturesSession
    cdc_tables = ("pairs",)
    #: a full ticker about once a second per product, changed or not
    cadences: ClassVar[Mapping[str, float]] = {"ticker": 1.0}

    def heartbeat_cadence(self) -> float | None:
        return self.config.heartbeat_interval if self.config.heartbeat else None

    async def discover(self, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
        return await symbols.discover(self.config.rest_url, query, client)

    async def lookup(self, query: InstrumentQuery, source: SecmasterReader) -> Resolution:
        return await symbols.from_secmaster(query, source)
