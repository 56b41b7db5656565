"""Kraken spot connector: WebSocket v2 public channels (sheet ``kraken.md``)."""

from __future__ import annotations

from typing import ClassVar

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, VenueConnector
from ssmd.connectors.kraken import symbols
from ssmd.connectors.kraken.config import KrakenConfig
from ssmd.connectors.kraken.subscriptions import KrakenSession
from ssmd.connectors.secmaster import SecmasterReader
from ssmd.core import Processor

__all__ = ["KrakenConnector"]


class KrakenConnector(VenueConnector[KrakenConfig]):
    """ticker (``event_trigger: bbo``), trade, book (depth 10, checksum verified)."""

    venue: ClassVar[str] = "kraken"
    all_channels: ClassVar[tuple[str, ...]] = ("ticker", "trade", "book")
    default_channels: ClassVar[tuple[str, ...]] = ("ticker", "trade", "book")
    config_class = KrakenConfig
    session_class = KrakenSession
    cdc_tables = ("pairs",)

    def heartbeat_cadence(self) -> float | None:
        # a heartbeat about once a second whenever no other update was sent, once subscribed
        return 1.0

    def configure(self, processor: Processor) -> None:
        super().configure(processor)
        processor.set_book_depth(self.config.book_depth)

    async def discover(self, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
        return await symbols.discover(self.config.rest_url, query, client)

    async def lookup(self, query: InstrumentQuery, source: SecmasterReader) -> Resolution:
        return await symbols.from_secmaster(query, source)
