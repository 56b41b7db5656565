"""The connector runtime: supervision, backoff, desired set, watchdog, sinks.

Venue knowledge lives in :mod:`ssmd.connectors`; this package runs any venue:

* :class:`Capture` — a venue's instruments sharded over supervised connections;
* :class:`Connection` (``supervisor``) — connect, subscribe, read, reconnect;
* :mod:`.backoff` — full-jitter backoff, Retry-After, error classes;
* :mod:`.desired` — the desired set and its diff into (un)subscribe requests;
* :mod:`.watchdog` — data stall detection per connection and per instrument;
* :mod:`.sink` — the sink interface and the embedded archive sink;
* :mod:`.shutdown` — SIGINT/SIGTERM to a clean stop;
* :mod:`.status` — the ssmd status lines (disconnect, reconnect, stall, …).
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy: ssmd.connectors.base imports runtime modules, and the capture imports it.
_WHERE = {
    "ActivityTracker": "ssmd.runtime.watchdog",
    "ArchiveSink": "ssmd.runtime.sink",
    "Backoff": "ssmd.runtime.backoff",
    "Capture": "ssmd.runtime.capture",
    "ClassifiedError": "ssmd.runtime.backoff",
    "Connection": "ssmd.runtime.supervisor",
    "ErrorClass": "ssmd.runtime.backoff",
    "Failure": "ssmd.runtime.backoff",
    "MemorySink": "ssmd.runtime.sink",
    "ShardPlan": "ssmd.runtime.desired",
    "Sink": "ssmd.runtime.sink",
    "Stall": "ssmd.runtime.watchdog",
    "StopSignal": "ssmd.runtime.shutdown",
    "SubscriptionState": "ssmd.runtime.desired",
    "classify": "ssmd.runtime.backoff",
    "default_writer": "ssmd.runtime.capture",
    "install_stop_signals": "ssmd.runtime.shutdown",
    "status_line": "ssmd.runtime.status",
    "status_subject": "ssmd.runtime.status",
    "subject_token": "ssmd.runtime.status",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
