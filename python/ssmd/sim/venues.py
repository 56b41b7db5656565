"""Registry of the venue simulators (CLI names)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

from ssmd.errors import ConfigError

if TYPE_CHECKING:
    from ssmd.sim.server import Venue

__all__ = ["VENUES", "venue_class"]

VENUES = ("kalshi", "kraken", "kraken-futures", "polymarket")

_CLASSES = {
    "kalshi": ("ssmd.sim.kalshi", "KalshiVenue"),
    "kraken": ("ssmd.sim.kraken", "KrakenVenue"),
    "kraken-futures": ("ssmd.sim.kraken_futures", "KrakenFuturesVenue"),
    "polymarket": ("ssmd.sim.polymarket", "PolymarketVenue"),
}


def venue_class(name: str) -> type[Venue]:
    """The :class:`~ssmd.sim.server.Venue` of ``name`` (``kraken_futures`` also accepted)."""
    key = name.replace("_", "-")
    if key not in _CLASSES:
        raise ConfigError(f"unknown venue {name!r} (known: {', '.join(VENUES)})")
    module, cls = _CLASSES[key]
    return cast("type[Venue]", getattr(importlib.import_module(module), cls))
