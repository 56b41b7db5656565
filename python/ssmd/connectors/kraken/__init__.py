"""Kraken spot WebSocket v2: ticker (bbo trigger), trade, book depth 10."""

from ssmd.connectors.kraken.config import KrakenConfig
from ssmd.connectors.kraken.connector import KrakenConnector

__all__ = ["KrakenConfig", "KrakenConnector"]
