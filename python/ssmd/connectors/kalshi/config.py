"""Kalshi settings and the API key (protocol sheet ``kalshi.md`` section 1).

The key id and the private key file come only from the environment
(``KALSHI_API_KEY``, ``KALSHI_PRIVATE_KEY_PATH``, read once by
:mod:`ssmd.settings` and passed in) and are never logged or shown in a repr. The file is PEM, PKCS#8 (``BEGIN PRIVATE KEY``) or PKCS#1
(``BEGIN RSA PRIVATE KEY``); anything else is a one-line
:class:`~ssmd.errors.ConfigError` before any connection is attempted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ssmd.connectors.base import ConnectorConfig
from ssmd.errors import ConfigError
from ssmd.types import Venue

__all__ = ["KalshiConfig", "load_private_key"]


@dataclass(frozen=True, kw_only=True)
class KalshiConfig(ConnectorConfig):
    """Kalshi v2; the connection itself needs RSA-PSS signed headers."""

    ws_url: str = "wss://api.elections.kalshi.com/trade-api/ws/v2"
    #: REST root with its version path (markets, series)
    rest_url: str = Venue.KALSHI.rest_root
    #: markets per subscription, hence per connection (ssmd's 256; error 26 above the venue's cap)
    max_per_connection: int = 256
    #: client WebSocket Ping interval (the server pings every 10 s too)
    ping_interval: float = 20.0
    liveness_timeout: float = 45.0
    #: ``send_initial_snapshot`` on ticker subscriptions with explicit markets
    initial_snapshot: bool = True
    #: REST page size for ``/markets``
    page_size: int = 1000
    #: API key id (``KALSHI_API_KEY``)
    api_key: str | None = field(default=None, repr=False)
    #: PEM private key file (``KALSHI_PRIVATE_KEY_PATH``)
    private_key_path: str | None = field(default=None, repr=False)


def load_private_key(path: str | Path | None) -> RSAPrivateKey:
    """The RSA private key at ``path`` (PEM PKCS#8 or PKCS#1) or a one-line ConfigError."""
    if not path:
        raise ConfigError("kalshi: KALSHI_PRIVATE_KEY_PATH is not set (a PEM RSA private key)")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"kalshi: cannot read private key {path}: {exc.strerror or exc}"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(
            f"kalshi: private key {path} is encrypted; ssmd needs an unencrypted PEM key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            f"kalshi: {path} is not a PEM RSA private key (PKCS#8 or PKCS#1)"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"kalshi: {path} holds a {type(key).__name__}, not an RSA private key")
    return key
