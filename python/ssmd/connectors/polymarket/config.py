"""Polymarket settings (protocol sheet ``polymarket.md``)."""

from __future__ import annotations

from dataclasses import dataclass

from ssmd.connectors.base import ConnectorConfig
from ssmd.types import Venue

__all__ = ["PolymarketConfig"]


@dataclass(frozen=True, kw_only=True)
class PolymarketConfig(ConnectorConfig):
    """Polymarket market channel; no auth."""

    ws_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
    #: Gamma REST root (markets and their token ids)
    rest_url: str = Venue.POLYMARKET.rest_root
    #: above 500 tokens a connection stops receiving updates (empirical)
    max_per_connection: int = 500
    #: text ``PING`` every 10 s, answered by ``PONG``
    ping_interval: float = 10.0
    liveness_timeout: float = 30.0
    #: condition ids per Gamma lookup (the keyset endpoint takes at most 100)
    conditions_per_request: int = 100
    #: Gamma page size for ``--all``
    page_size: int = 100
