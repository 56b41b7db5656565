"""The Redis cache of the secmaster (``ssmd cache run``, docs/cache.md).

One hash per row of the ``instruments`` view, ``ssmd:{venue}:inst:{instrument}``
(the raw venue id), with the view's columns and the (``lsn``, ``n``) of the
last change applied; ``ssmd:{venue}:index`` and ``ssmd:{venue}:status:{status}``
sets. Loaded from PostgreSQL and swapped in atomically, then kept current from
the ``cdc.>`` stream.
"""

from __future__ import annotations

from ssmd.cache.store import CacheStore, index_key, inst_key, status_key

__all__ = ["CacheStore", "index_key", "inst_key", "status_key"]
