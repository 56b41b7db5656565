"""Kraken spot settings (protocol sheet ``kraken.md``)."""

from __future__ import annotations

from dataclasses import dataclass

from ssmd.connectors.base import ConnectorConfig
from ssmd.types import Venue

__all__ = ["KrakenConfig"]


@dataclass(frozen=True, kw_only=True)
class KrakenConfig(ConnectorConfig):
    """Kraken spot v2; public channels need no auth."""

    ws_url: str = "wss://ws.kraken.com/v2"
    #: REST root with its version path; AssetPairs is ``{rest_url}/public/AssetPairs``
    rest_url: str = Venue.KRAKEN.rest_root
    #: no cap is documented; ssmd spreads larger sets over connections
    max_per_connection: int = 1000
    #: symbols per subscribe request
    symbols_per_request: int = 250
    #: app-level ``{"method":"ping"}`` interval (the server also sends heartbeats)
    ping_interval: float = 30.0
    #: heartbeats arrive about once a second once subscribed
    liveness_timeout: float = 30.0
    #: book depth subscribed (checksums cover the top 10 either way)
    book_depth: int = 10
    #: ticker trigger: ``bbo`` publishes every best bid/offer change
    event_trigger: str = "bbo"
