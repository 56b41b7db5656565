"""Kraken Futures settings (protocol sheet ``kraken-futures.md``)."""

from __future__ import annotations

from dataclasses import dataclass

from ssmd.connectors.base import ConnectorConfig
from ssmd.types import Venue

__all__ = ["KrakenFuturesConfig"]


@dataclass(frozen=True, kw_only=True)
class KrakenFuturesConfig(ConnectorConfig):
    """Kraken Futures v1; public feeds need no auth."""

    ws_url: str = "wss://futures.kraken.com/ws/v1"
    #: REST root with its version path; instruments are ``{rest_url}/instruments``
    rest_url: str = Venue.KRAKEN_FUTURES.rest_root
    #: no cap is documented; ssmd spreads larger sets over connections
    max_per_connection: int = 1000
    #: products per subscribe request
    products_per_request: int = 250
    #: the venue closes a connection without a client ping for 60 s
    ping_interval: float = 30.0
    liveness_timeout: float = 60.0
    #: subscribe the ``heartbeat`` feed for an in-band liveness signal
    heartbeat: bool = True
    #: seconds between two heartbeats (the venue does not document it); with ``heartbeat``,
    #: a connection with no frame at all for 3 intervals (at least the stall bound) is stalled
    heartbeat_interval: float = 5.0
