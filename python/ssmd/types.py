"""Neutral names and the normalized model (docs/core.md).

Venue and channel names are defined once here (mirrored by the Rust
``Venue`` enum). Normalized records are produced by the Rust core as JSON
lines; these frozen dataclasses load them. Prices and sizes stay exact
decimal text; the ``*_dec`` properties give :class:`decimal.Decimal` views.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ssmd.errors import ConfigError

__all__ = [
    "BookDelta",
    "BookSnapshot",
    "Channel",
    "Codec",
    "Lifecycle",
    "Quote",
    "Record",
    "Status",
    "Trade",
    "Venue",
    "record_from_dict",
]


class Venue(str, enum.Enum):
    """A venue; the value is the CLI and subject name.

    This enum is the one list of venues: every registry (connectors,
    simulators, streams, secmaster APIs, sample generators, CLI choices) is
    derived from it, and the Rust core's ``Venue`` enum mirrors it
    (``ssmd.core.venues()``); ``tests/unit/test_venues.py`` fails when any of
    them disagrees. ``docs/adding-a-venue.md`` lists what a new member needs.
    """

    KALSHI = "kalshi"
    KRAKEN = "kraken"
    KRAKEN_FUTURES = "kraken-futures"
    POLYMARKET = "polymarket"

    @property
    def module(self) -> str:
        """Module id (``kraken_futures``): the folder, fixture and module name of the venue."""
        return self.name.lower()

    @property
    def class_stem(self) -> str:
        """Stem of the venue's class names (``KrakenFutures`` -> ``KrakenFuturesConnector``)."""
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def short(self) -> str:
        """Short name in connection ids (``kf-host-1a2b3c-0``)."""
        return _SHORT.get(self, self.value)

    @property
    def rest_root(self) -> str:
        """The venue's public REST API root, including its version path, no trailing slash."""
        return _REST_ROOTS[self]

    @classmethod
    def parse(cls, name: str | Venue) -> Venue:
        """Accept a Venue, the CLI name or the module id; raise ConfigError otherwise."""
        if isinstance(name, Venue):
            return name
        for v in cls:
            if name in (v.value, v.module):
                return v
        raise ConfigError(f"unknown venue {name!r} (known: {cls.names()})")

    @classmethod
    def names(cls) -> str:
        """``kalshi, kraken, kraken-futures, polymarket``: the CLI choices for help texts."""
        return ", ".join(v.value for v in cls)


#: connection id prefixes that differ from the venue name
_SHORT = {Venue.KRAKEN_FUTURES: "kf"}

#: REST roots (API root including the version path): the connectors' discovery and
#: the secmaster syncs append their endpoint paths to these
_REST_ROOTS = {
    Venue.KALSHI: "https://api.elections.kalshi.com/trade-api/v2",
    Venue.KRAKEN: "https://api.kraken.com/0",
    Venue.KRAKEN_FUTURES: "https://futures.kraken.com/derivatives/api/v3",
    Venue.POLYMARKET: "https://gamma-api.polymarket.com",
}


class Codec(str, enum.Enum):
    """Archive compression: one gzip member or zstd frame per flush."""

    GZIP = "gzip"
    ZSTD = "zstd"


class Channel(str, enum.Enum):
    """Subject kinds (docs/bus.md)."""

    TICKER = "ticker"
    TRADE = "trade"
    BOOK = "book"
    LIFECYCLE = "lifecycle"
    STATUS = "status"
    BEST_BID_ASK = "best_bid_ask"
    PRICE_CHANGE = "price_change"
    NEW_MARKET = "new_market"
    MARKET_RESOLVED = "market_resolved"
    TICK_SIZE_CHANGE = "tick_size_change"
    MALFORMED = "malformed"


def _dec(s: str | None) -> Decimal | None:
    return None if s is None else Decimal(s)


@dataclass(frozen=True, slots=True)
class Trade:
    venue: str
    instrument: str
    ts: int | None
    seq: int | None
    price: str | None
    size: str | None
    side: str | None
    trade_id: str | None

    @property
    def price_dec(self) -> Decimal | None:
        return _dec(self.price)

    @property
    def size_dec(self) -> Decimal | None:
        return _dec(self.size)


@dataclass(frozen=True, slots=True)
class Quote:
    venue: str
    instrument: str
    ts: int | None
    bid: str | None
    bid_size: str | None
    ask: str | None
    ask_size: str | None
    last: str | None

    @property
    def mid_dec(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (Decimal(self.bid) + Decimal(self.ask)) / 2


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    venue: str
    instrument: str
    ts: int | None
    seq: int | None
    bids: tuple[tuple[str, str], ...]
    asks: tuple[tuple[str, str], ...]
    checksum: int | None


@dataclass(frozen=True, slots=True)
class BookDelta:
    venue: str
    instrument: str
    ts: int | None
    seq: int | None
    #: ``set`` (size is the new level total) or ``add`` (size is a change)
    mode: str
    #: ``(side, price, size)`` with side ``bid`` or ``ask``
    changes: tuple[tuple[str, str, str], ...]
    checksum: int | None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    venue: str
    instrument: str
    ts: int | None
    event: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Status:
    venue: str
    instrument: str | None
    ts: int | None
    status: str | None
    detail: dict[str, Any]


Record = Trade | Quote | BookSnapshot | BookDelta | Lifecycle | Status


def record_from_dict(d: dict[str, Any]) -> Record:
    """Build a record from one decoded normalized JSON line."""
    t = d["type"]
    base = (d["venue"], d["instrument"], d["ts"])
    if t == "trade":
        return Trade(*base, d["seq"], d["price"], d["size"], d["side"], d["trade_id"])
    if t == "quote":
        return Quote(*base, d["bid"], d["bid_size"], d["ask"], d["ask_size"], d["last"])
    if t == "book_snapshot":
        bids = tuple((p, s) for p, s in d["bids"])
        asks = tuple((p, s) for p, s in d["asks"])
        return BookSnapshot(*base, d["seq"], bids, asks, d["checksum"])
    if t == "book_delta":
        changes = tuple((side, p, s) for side, p, s in d["changes"])
        return BookDelta(*base, d["seq"], d["mode"], changes, d["checksum"])
    if t == "lifecycle":
        return Lifecycle(*base, d["event"], d["detail"] or {})
    if t == "status":
        return Status(*base, d["status"], d["detail"] or {})
    raise ValueError(f"unknown record type {t!r}")
