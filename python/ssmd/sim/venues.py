"""The simulated venue of each :class:`ssmd.types.Venue`.

The simulator of a venue is ``{Stem}Venue`` in ``ssmd.sim.<module>``
(``KrakenFuturesVenue`` in ``ssmd.sim.kraken_futures``); a venue added to
the enum without one fails ``tests/unit/test_venues.py``.
"""

from __future__ import annotations

import importlib

from ssmd.sim.base import Venue as SimVenue
from ssmd.types import Venue

__all__ = ["venue_class"]


def venue_class(venue: str | Venue) -> type[SimVenue]:
    """The simulated venue class of ``venue`` (CLI name or module id; ConfigError otherwise)."""
    v = Venue.parse(venue)
    module = importlib.import_module(f"ssmd.sim.{v.module}")
    found: type[SimVenue] = getattr(module, f"{v.class_stem}Venue")
    return found
