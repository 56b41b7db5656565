"""The security master: venue metadata in PostgreSQL (docs/secmaster.md).

* :mod:`ssmd.secmaster.db`: connections, numbered SQL migrations, bulk upserts.
* :mod:`ssmd.secmaster.sync`: the Kalshi, Kraken and Polymarket REST syncs.
* :mod:`ssmd.secmaster.query`: ``show`` and ``search`` over the ``instruments`` view.
* :mod:`ssmd.secmaster.schedule`: every sync on its interval.

Commands: ``ssmd db migrate``, ``ssmd secmaster sync|show|search|schedule``,
``ssmd kraken sync``, ``ssmd polymarket sync`` (docs/secmaster.md).
"""

from __future__ import annotations

from ssmd.secmaster.config import SecmasterSettings, VenueApi

__all__ = ["SecmasterSettings", "VenueApi"]
