"""The connector runtime: supervision, backoff, desired set, watchdog, sinks.

Venue knowledge lives in :mod:`ssmd.connectors`; this package runs any venue.
Import from the modules themselves:

* :mod:`.venue` — what the runtime asks of a venue (the ``Connector`` and
  ``VenueSession`` protocols that :mod:`ssmd.connectors.base` implements);
* :mod:`.capture` — :class:`~ssmd.runtime.capture.Capture`, a venue's
  instruments sharded over supervised connections, and ``run_capture``;
* :mod:`.supervisor` — :class:`~ssmd.runtime.supervisor.Connection`:
  connect, subscribe, read, reconnect; it talks to its capture through the
  narrow :class:`~ssmd.runtime.supervisor.CaptureLink`; its other jobs are its
  bases: :mod:`.intake` (frames in, per-tick batches, socket reads),
  :mod:`.requests` (subscriptions, resyncs, control events) and :mod:`.stalls`
  (the watchdog's verdicts acted on);
* :mod:`.stats` — a connection's counters and their move into :mod:`.metrics`;
* :mod:`.backoff` — full-jitter backoff (what to retry is
  :func:`ssmd.errors.classify`);
* :mod:`.desired` — the desired set and its diff into (un)subscribe requests;
* :mod:`.watchdog` — data stall detection per connection and per instrument;
* :mod:`.flow` — pausing reads while the sink is behind;
* :mod:`.sink` — the sink interface and the embedded archive sink;
* :mod:`.shutdown` — SIGINT/SIGTERM to a clean stop;
* :mod:`.status` — the ssmd status lines (disconnect, reconnect, stall, …);
* :mod:`.metrics` — the Prometheus metrics.
"""
