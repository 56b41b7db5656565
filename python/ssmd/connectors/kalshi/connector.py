"""Kalshi connector: Trade API v2 WebSocket with RSA-PSS signed upgrades."""

from __future__ import annotations

import base64
import time
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ssmd.connectors.base import InstrumentQuery, Resolution, VenueConnector
from ssmd.connectors.kalshi import symbols
from ssmd.connectors.kalshi.config import KalshiConfig, load_private_key
from ssmd.connectors.kalshi.subscriptions import GLOBAL_CHANNELS, KalshiSession
from ssmd.connectors.secmaster import SecmasterReader
from ssmd.errors import ConfigError

__all__ = ["KalshiConnector", "sign_headers"]


def sign_headers(
    key_id: str, key: RSAPrivateKey, method: str, path: str, ts_ms: int | None = None
) -> dict[str, str]:
    """The three ``KALSHI-ACCESS-*`` headers for ``method path`` (query string dropped).

    Message = ``<ms timestamp><METHOD><path>``, signed RSA-PSS with SHA-256,
    MGF1(SHA-256) and a 32-byte salt, base64 with padding (sheet section 1.2).
    """
    ts = str(int(time.time() * 1000) if ts_ms is None else ts_ms)
    message = (ts + method.upper() + path.split("?", 1)[0]).encode()
    signature = key.sign(
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return {
        "KALSHI-ACCESS-KEY": key_id,
        "KALSHI-ACCESS-TIMESTAMP": ts,
        "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode("ascii"),
    }


class KalshiConnector(VenueConnector[KalshiConfig]):
    """ticker, trade, market_lifecycle_v2; orderbook_delta when asked (``--channels``)."""

    venue: ClassVar[str] = "kalshi"
    all_channels: ClassVar[tuple[str, ...]] = (
        "ticker",
        "trade",
        "market_lifecycle_v2",
        "orderbook_delta",
    )
    default_channels: ClassVar[tuple[str, ...]] = ("ticker", "trade", "market_lifecycle_v2")
    config_class = KalshiConfig
    session_class = KalshiSession
    cdc_tables = ("markets", "events", "series")

    def __init__(self, config: KalshiConfig) -> None:
        super().__init__(config)
        if not config.api_key:
            raise ConfigError("kalshi: KALSHI_API_KEY is not set (the API key id)")
        # loaded now: a bad key file is an error before any connection is attempted
        self._key = load_private_key(config.private_key_path)

    def auth_headers(self, url: str) -> dict[str, str]:
        """Fresh signed headers for the upgrade of ``url`` (its path, no query)."""
        assert self.config.api_key is not None
        return sign_headers(self.config.api_key, self._key, "GET", urlsplit(url).path or "/")

    def accepts_empty_query(self) -> bool:
        return any(c in GLOBAL_CHANNELS for c in self.channels)

    def needs_connection(self, index: int) -> bool:
        return index == 0 and (self.resolution.global_subscription or self.accepts_empty_query())

    def check_query(self, query: InstrumentQuery) -> None:
        if query.all and "orderbook_delta" in self.channels:
            raise ConfigError("kalshi: orderbook_delta needs markets: use --symbols or --category")

    async def discover(self, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
        return await symbols.discover(self.config, query, client)

    async def lookup(self, query: InstrumentQuery, source: SecmasterReader) -> Resolution:
        return await symbols.from_secmaster(query, source)
