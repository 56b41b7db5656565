"""Template connector: the class attributes the runtime reads.

Phase 2 (public channels) fills ``all_channels``/``default_channels`` and the
session; phase 3 adds golden fixtures (``tests/fixtures/<venue>/``) and the
Rust parser (``rust/venues/<venue>.rs``); phase 4 a bench against the
simulator.
"""

from __future__ import annotations

from typing import ClassVar

import httpx

from ssmd.connectors._template import symbols
from ssmd.connectors._template.config import TemplateConfig
from ssmd.connectors._template.subscriptions import TemplateSession
from ssmd.connectors.base import InstrumentQuery, Resolution, VenueConnector
from ssmd.connectors.secmaster import SecmasterReader

__all__ = ["TemplateConnector"]


class TemplateConnector(VenueConnector[TemplateConfig]):
    """Not registered: copy, rename, then add the venue to ``ssmd.types.Venue``."""

    venue: ClassVar[str] = "template"
    all_channels: ClassVar[tuple[str, ...]] = ("ticker", "trade")
    default_channels: ClassVar[tuple[str, ...]] = ("ticker", "trade")
    config_class = TemplateConfig
    session_class = TemplateSession

    def auth_headers(self, url: str) -> dict[str, str]:
        """Signed upgrade headers when the venue needs them (see the Kalshi connector)."""
        return {}

    async def discover(self, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
        return await symbols.discover(self.config.rest_url, query, client)

    async def lookup(self, query: InstrumentQuery, source: SecmasterReader) -> Resolution:
        return await symbols.from_secmaster(query, source)
