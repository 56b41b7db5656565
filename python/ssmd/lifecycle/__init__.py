"""The lifecycle consumer (``ssmd lifecycle run``): Kalshi lifecycle events into the secmaster.

Kalshi's ``market_lifecycle_v2`` channel (with ``event_lifecycle``) says when
a market is created, opens, pauses, changes its close time, is determined
and settles. :mod:`.apply` turns each such message into one transaction:
the event recorded in ``market_lifecycle_events`` (idempotent on where it
came from in the stream) and the market moved forward, never backwards.
:mod:`.service` reads them from the bus (docs/lifecycle.md).
"""

from __future__ import annotations

from ssmd.lifecycle.apply import STATUS_RANK, LifecycleEvent, apply_event, parse_line

__all__ = ["STATUS_RANK", "LifecycleEvent", "apply_event", "parse_line"]
