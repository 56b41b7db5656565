"""Venue name → connector class (``ssmd connect <venue>``)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ssmd.connectors.base import VenueConnector
from ssmd.errors import ConfigError

__all__ = ["VENUES", "connector_class", "create"]

#: CLI/subject venue name -> "module:Class"
VENUES: dict[str, str] = {
    "kalshi": "ssmd.connectors.kalshi.connector:KalshiConnector",
    "kraken": "ssmd.connectors.kraken.connector:KrakenConnector",
    "kraken-futures": "ssmd.connectors.kraken_futures.connector:KrakenFuturesConnector",
    "polymarket": "ssmd.connectors.polymarket.connector:PolymarketConnector",
}


def connector_class(venue: str) -> type[VenueConnector[Any]]:
    """The connector class of ``venue`` (CLI name or module id)."""
    name = venue.replace("_", "-")
    try:
        target = VENUES[name]
    except KeyError:
        raise ConfigError(f"unknown venue {venue!r} (known: {', '.join(sorted(VENUES))})") from None
    module, _, cls = target.partition(":")
    found: type[VenueConnector[Any]] = getattr(importlib.import_module(module), cls)
    return found


def create(venue: str, settings: Mapping[str, Any] | None = None) -> VenueConnector[Any]:
    """A connector for ``venue`` with its config built from ``settings`` (unknown keys fail)."""
    cls = connector_class(venue)
    config = cls.config_class.from_mapping(dict(settings or {}))
    return cls(config)
