"""Venue → connector class (``ssmd connect <venue>``), derived from :class:`ssmd.types.Venue`.

The connector of a venue is ``{Stem}Connector`` in
``ssmd.connectors.<module>.connector`` (``KrakenFuturesConnector`` in
``ssmd.connectors.kraken_futures.connector``); a venue added to the enum
without one fails ``tests/unit/test_venues.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ssmd.connectors.base import VenueConnector
from ssmd.types import Venue

__all__ = ["connector_class", "create"]


def connector_class(venue: str | Venue) -> type[VenueConnector[Any]]:
    """The connector class of ``venue`` (CLI name or module id; ConfigError otherwise)."""
    v = Venue.parse(venue)
    module = importlib.import_module(f"ssmd.connectors.{v.module}.connector")
    found: type[VenueConnector[Any]] = getattr(module, f"{v.class_stem}Connector")
    return found


def create(venue: str | Venue, settings: Mapping[str, Any] | None = None) -> VenueConnector[Any]:
    """A connector for ``venue`` with its config built from ``settings`` (unknown keys fail)."""
    cls = connector_class(venue)
    config = cls.config_class.from_mapping(dict(settings or {}))
    return cls(config)
