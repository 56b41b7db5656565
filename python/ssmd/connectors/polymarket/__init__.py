"""Polymarket CLOB market channel: books, price changes, trades, custom features."""

from ssmd.connectors.polymarket.config import PolymarketConfig
from ssmd.connectors.polymarket.connector import PolymarketConnector

__all__ = ["PolymarketConfig", "PolymarketConnector"]
