"""Kraken Futures WebSocket v1: ticker, trade (and book when asked)."""

from ssmd.connectors.kraken_futures.config import KrakenFuturesConfig
from ssmd.connectors.kraken_futures.connector import KrakenFuturesConnector

__all__ = ["KrakenFuturesConfig", "KrakenFuturesConnector"]
