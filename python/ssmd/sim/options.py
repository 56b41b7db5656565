"""Knobs of the simulated venues (``ssmd sim`` flags, ``start_sim(options=…)``)."""

from __future__ import annotations

from dataclasses import dataclass

from ssmd.errors import ConfigError

__all__ = ["SimOptions"]


@dataclass(frozen=True)
class SimOptions:
    """Knobs of the simulated venues; the defaults are the real venues' values."""

    #: pacing interval of the pump, seconds
    tick: float = 0.005
    #: bytes waiting in a connection's transport before the slow-reader rule applies
    max_queue_bytes: int = 8 * 1024 * 1024
    #: Kraken spot idle heartbeat (1 s) and Kraken Futures heartbeat feed (5 s) when None
    heartbeat_interval: float | None = None
    #: Kalshi server WebSocket Ping interval (payload ``heartbeat``)
    ping_interval: float = 10.0
    #: Kraken Futures closes a connection that sent no ping for this long
    ping_timeout: float = 60.0
    #: Kraken Futures ticker: at most one per product per this many seconds (0 = no limit)
    ticker_interval: float = 1.0
    #: REST requests per second before 429 + Retry-After (0 = unlimited)
    rest_rate: float = 0.0
    #: REST burst (default: one second's worth)
    rest_burst: float | None = None
    #: Kalshi: markets per subscription before error 26
    kalshi_market_limit: int = 256
    #: Kalshi: accepted clock skew of KALSHI-ACCESS-TIMESTAMP, seconds
    kalshi_signature_skew: float = 5.0
    #: Polymarket: assets per connection that get updates (the excess gets none)
    polymarket_asset_limit: int = 500

    def __post_init__(self) -> None:
        if self.tick <= 0:
            raise ConfigError("tick must be > 0")
        if self.max_queue_bytes < 1024:
            raise ConfigError("max_queue_bytes must be at least 1024")
        for name in ("ping_interval", "ping_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0")
        if self.heartbeat_interval is not None and self.heartbeat_interval <= 0:
            raise ConfigError("heartbeat_interval must be > 0")
        if self.rest_rate < 0 or self.ticker_interval < 0:
            raise ConfigError("rest_rate and ticker_interval must be >= 0")
