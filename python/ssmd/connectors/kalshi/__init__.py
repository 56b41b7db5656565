"""Kalshi Trade API v2 WebSocket: ticker, trade, lifecycle (+ order books)."""

from ssmd.connectors.kalshi.config import KalshiConfig, load_private_key
from ssmd.connectors.kalshi.connector import KalshiConnector, sign_headers

__all__ = ["KalshiConfig", "KalshiConnector", "load_private_key", "sign_headers"]
