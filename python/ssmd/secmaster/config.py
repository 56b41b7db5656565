"""Settings of the secmaster syncs: where each venue's REST API is and how hard to hit it.

Loaded once (CLI flags over environment over defaults) into frozen objects
and passed down. Base URLs are the venue's API root including its version
path; a path such as ``/markets`` is appended to it.

| venue | default base URL | env override | default rate |
|---|---|---|---|
| kalshi | ``https://api.elections.kalshi.com/trade-api/v2`` | ``SSMD_KALSHI_REST_URL`` | 10 req/s |
| kraken | ``https://api.kraken.com/0`` | ``SSMD_KRAKEN_REST_URL`` | 1 req/s |
| kraken-futures | ``https://futures.kraken.com/derivatives/api/v3`` | ``SSMD_KRAKEN_FUTURES_REST_URL`` | 5 req/s |
| polymarket | ``https://gamma-api.polymarket.com`` | ``SSMD_POLYMARKET_GAMMA_URL`` | 10 req/s |

Rates can be overridden with ``SSMD_<VENUE>_RATE`` (requests per second,
``0`` for no limit), e.g. ``SSMD_KRAKEN_FUTURES_RATE``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ssmd.errors import ConfigError

__all__ = [
    "DEFAULT_URLS",
    "KALSHI_STATUS_FILTERS",
    "RATE_ENV",
    "URL_ENV",
    "SecmasterSettings",
    "VenueApi",
]

VENUES = ("kalshi", "kraken", "kraken-futures", "polymarket")

#: values of Kalshi's REST ``status`` filter (not the market ``status`` field values)
KALSHI_STATUS_FILTERS = ("unopened", "open", "paused", "closed", "settled")

DEFAULT_URLS = {
    "kalshi": "https://api.elections.kalshi.com/trade-api/v2",
    "kraken": "https://api.kraken.com/0",
    "kraken-futures": "https://futures.kraken.com/derivatives/api/v3",
    "polymarket": "https://gamma-api.polymarket.com",
}
URL_ENV = {
    "kalshi": "SSMD_KALSHI_REST_URL",
    "kraken": "SSMD_KRAKEN_REST_URL",
    "kraken-futures": "SSMD_KRAKEN_FUTURES_REST_URL",
    "polymarket": "SSMD_POLYMARKET_GAMMA_URL",
}
RATE_ENV = {v: f"SSMD_{v.upper().replace('-', '_')}_RATE" for v in VENUES}
DEFAULT_RATES = {"kalshi": 10.0, "kraken": 1.0, "kraken-futures": 5.0, "polymarket": 10.0}


def _check_url(venue: str, url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise ConfigError(f"{venue} base URL must be an http(s) URL, got {url!r}")
    return url


@dataclass(frozen=True, slots=True)
class VenueApi:
    """One venue's REST API as a sync uses it."""

    #: ``kalshi``, ``kraken``, ``kraken-futures`` or ``polymarket``
    venue: str
    #: API root including the version path, no trailing slash
    base_url: str
    #: requests per second to this venue (0: unlimited)
    rate: float = 10.0
    #: requests in flight at once
    concurrency: int = 4
    #: seconds per request (connect, read)
    timeout: float = 30.0
    #: attempts per request on 429, 5xx, timeouts, bad pages
    attempts: int = 5
    #: first backoff in seconds (doubles per attempt, with jitter)
    backoff: float = 0.5
    #: longest Retry-After honoured, seconds
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.venue not in VENUES:
            raise ConfigError(f"unknown venue {self.venue!r} (known: {', '.join(VENUES)})")
        if self.rate < 0 or self.concurrency < 1 or self.attempts < 1 or self.timeout <= 0:
            raise ConfigError(f"{self.venue}: rate, concurrency, attempts and timeout must be > 0")


@dataclass(frozen=True, slots=True)
class SecmasterSettings:
    """Everything a sync needs: the database and the four venue APIs."""

    database_url: str | None
    apis: Mapping[str, VenueApi] = field(default_factory=dict)
    #: rows buffered per table before one bulk write
    flush_rows: int = 5000

    def api(self, venue: str) -> VenueApi:
        return self.apis[venue]

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        database_url: str | None = None,
        urls: Mapping[str, str | None] | None = None,
        rates: Mapping[str, float | None] | None = None,
        attempts: int | None = None,
    ) -> SecmasterSettings:
        """Defaults, then the environment, then explicit values (CLI flags)."""
        env = os.environ if env is None else env
        apis: dict[str, VenueApi] = {}
        for venue in VENUES:
            url = (urls or {}).get(venue) or env.get(URL_ENV[venue]) or DEFAULT_URLS[venue]
            rate = (rates or {}).get(venue)
            if rate is None:
                raw = env.get(RATE_ENV[venue])
                try:
                    rate = float(raw) if raw else DEFAULT_RATES[venue]
                except ValueError:
                    raise ConfigError(f"{RATE_ENV[venue]} must be a number, got {raw!r}") from None
            base = _check_url(venue, url)
            if venue == "kraken" and base.endswith("/public"):  # the connector's form of the root
                base = base.removesuffix("/public")
            api = VenueApi(venue, base, rate=rate)
            if attempts is not None:
                api = replace(api, attempts=attempts)
            apis[venue] = api
        return cls(database_url=database_url or env.get("DATABASE_URL") or None, apis=apis)
