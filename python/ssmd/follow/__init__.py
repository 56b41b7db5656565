"""Dynamic subscriptions: a capture that follows the secmaster through CDC (docs/connect.md).

A connector started with a filter (``--all``, ``--category``) resolved
through the secmaster subscribes what the filter matched at start-up. A
:class:`~ssmd.follow.service.Follower` then reads the CDC stream for the
tables that can change that answer; each change committed after the
resolution's snapshot makes it resolve the same filter again and move the
capture to the new set: new active instruments subscribed, closed or
delisted ones unsubscribed, shards and per-connection caps kept by the
capture's own placement.
"""

from __future__ import annotations

from ssmd.follow.service import Follower

__all__ = ["Follower"]
