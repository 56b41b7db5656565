"""Venue connectors: one folder per venue with the same files (STYLE item 4).

``connectors/<venue>/{config,connector,subscriptions,symbols}.py`` on the
base classes of :mod:`ssmd.connectors.base`; :mod:`ssmd.connectors.registry`
finds a venue's connector from :class:`ssmd.types.Venue`. ``_template/`` is
the starting point for a new venue (see ``docs/adding-a-venue.md``).
"""

from __future__ import annotations

from ssmd.connectors.registry import connector_class, create

__all__ = ["connector_class", "create"]
