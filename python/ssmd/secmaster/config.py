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

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ssmd.errors import ConfigError
from ssmd.secmaster.symbols import kraken_root
from ssmd.types import Venue

__all__ = [
    "DEFAULT_URLS",
    "KALSHI_STATUS_FILTERS",
    "RATE_ENV",
    "SYNCS",
    "SYNC_FOR",
    "URL_ENV",
    "SecmasterSettings",
    "VenueApi",
]

#: values of Kalshi's REST ``status`` filter (not the market ``status`` field values)
KALSHI_STATUS_FILTERS = ("unopened", "open", "paused", "closed", "settled")

#: the sync that fills each venue's tables (``kraken`` covers spot and Futures)
SYNC_FOR = {
    Venue.KALSHI: "kalshi",
    Venue.KRAKEN: "kraken",
    Venue.KRAKEN_FUTURES: "kraken",
    Venue.POLYMARKET: "polymarket",
}
#: the syncs, in venue order: ``kalshi``, ``kraken``, ``polymarket``
SYNCS = tuple(dict.fromkeys(SYNC_FOR[v] for v in Venue))

#: every venue's API root (:attr:`Venue.rest_root`)
DEFAULT_URLS = {v.value: v.rest_root for v in Venue}
#: environment variables that replace a venue's API root
URL_ENV = {
    Venue.KALSHI.value: "SSMD_KALSHI_REST_URL",
    Venue.KRAKEN.value: "SSMD_KRAKEN_REST_URL",
    Venue.KRAKEN_FUTURES.value: "SSMD_KRAKEN_FUTURES_REST_URL",
    Venue.POLYMARKET.value: "SSMD_POLYMARKET_GAMMA_URL",
}
RATE_ENV = {v.value: f"SSMD_{v.module.upper()}_RATE" for v in Venue}
DEFAULT_RATES = {
    Venue.KALSHI.value: 10.0,
    Venue.KRAKEN.value: 1.0,
    Venue.KRAKEN_FUTURES.value: 5.0,
    Venue.POLYMARKET.value: 10.0,
}


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
        object.__setattr__(self, "venue", Venue.parse(self.venue).value)
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
        """Defaults, then ``env`` (environment variables the caller read: the CLI passes
        none and gives :class:`ssmd.settings.Settings` values as ``urls``/``rates``), then
        explicit values."""
        env = {} if env is None else env
        apis: dict[str, VenueApi] = {}
        for venue in (v.value for v in Venue):
            url = (urls or {}).get(venue) or env.get(URL_ENV[venue]) or DEFAULT_URLS[venue]
            rate = (rates or {}).get(venue)
            if rate is None:
                raw = env.get(RATE_ENV[venue])
                try:
                    rate = float(raw) if raw else DEFAULT_RATES[venue]
                except ValueError:
                    raise ConfigError(f"{RATE_ENV[venue]} must be a number, got {raw!r}") from None
            base = _check_url(venue, url)
            if venue == Venue.KRAKEN.value:
                base = kraken_root(base)
            api = VenueApi(venue, base, rate=rate)
            if attempts is not None:
                api = replace(api, attempts=attempts)
            apis[venue] = api
        return cls(database_url=database_url or env.get("DATABASE_URL") or None, apis=apis)
