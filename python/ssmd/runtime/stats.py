"""Counters of one connection, and their move into the Prometheus metrics.

The hot path only adds to a dict keyed by subject (:meth:`ConnectionStats.account`);
once a tick :meth:`ConnectionStats.settle` folds it into per-kind totals and the
watchdog's per-instrument activity, and :meth:`ConnectionStats.publish` moves
the deltas into :mod:`.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Container
from typing import TYPE_CHECKING, Any

from ssmd.runtime.watchdog import CONNECTION, ActivityTracker

if TYPE_CHECKING:
    from ssmd.core import Batch
    from ssmd.runtime.metrics import Metrics

__all__ = ["NOT_DATA", "ConnectionStats"]

#: kinds that are not market data for the watchdog
NOT_DATA = frozenset(("status", "malformed"))


class ConnectionStats:
    """Plain counters of one connection, moved to Prometheus once a second."""

    #: the lag histogram samples one batch per this many seconds
    LAG_EVERY = 0.5
    #: and at most this many messages of it, spread over the batch
    LAG_SAMPLES = 64

    def __init__(self, venue: str, conn: str, m: Metrics | None) -> None:
        self.venue = venue
        self.conn = conn
        self.m = m
        self.frames = 0
        self.frame_bytes = 0
        self.controls = 0
        self.status_lines = 0
        self.reconnects = 0
        self.disconnects = 0
        self.venue_errors = 0
        self.resync_requests = 0
        self.stalls: dict[str, int] = {}
        self.kinds: dict[str, list[int]] = {}
        #: subject -> [messages, bytes, last seen] since the last settle
        self._acc: dict[str, list[Any]] = {}
        self._published: dict[str, int] = {}
        self._next_lag = 0.0
        self._subs = 0
        self._connected = False
        self.counters: dict[str, int] = {}

    def account(self, batch: Batch, subjects: list[tuple[str, int, int]], now: float) -> None:
        """Per-subject counts of one batch (settled about once a tick) and a lag sample.

        ``subjects`` is ``Batch.subjects()``: ``(subject, lines, bytes)``. The
        hot path only adds to a dict keyed by subject; parsing subjects,
        per-kind totals and the watchdog's per-instrument rates happen in
        :meth:`settle`, once per subject per tick instead of once per batch.
        """
        acc = self._acc
        for subj, count, nbytes in subjects:
            v = acc.get(subj)
            if v is None:
                acc[subj] = [count, nbytes, now]
            else:
                v[0] += count
                v[1] += nbytes
                v[2] = now
        if self.m is not None and now >= self._next_lag:
            self._next_lag = now + self.LAG_EVERY
            now_ms = time.time_ns() / 1e6
            h = self.m.lag.labels(self.venue)
            for ts in batch.exchange_ms(self.LAG_SAMPLES):
                if ts:
                    h.observe(max(0.0, (now_ms - ts) / 1000.0))

    def settle(
        self,
        tracker: ActivityTracker,
        keys: Container[str],
        key_subjects: dict[str, str],
    ) -> None:
        """Fold the accumulated subjects into per-kind totals and watchdog activity.

        ``keys`` are the watchdog keys of the connection; the status subject of
        a key seen for the first time is noted in ``key_subjects``.
        """
        acc = self._acc
        if not acc:
            return
        kinds = self.kinds
        data = 0
        last_data = 0.0
        heard: dict[str, list[Any]] = {}  # key -> [messages, last time]: one report per key
        for subj, (count, nbytes, at) in acc.items():
            i = subj.find(".json.")
            kind, _, key = subj[i + 6 :].partition(".")
            kc = kinds.get(kind)
            if kc is None:
                kc = kinds[kind] = [0, 0]
            kc[0] += count
            kc[1] += nbytes
            if kind in NOT_DATA:
                continue
            data += count
            last_data = max(last_data, at)
            if key in keys:
                h = heard.get(key)
                if h is None:
                    heard[key] = [count, at]
                else:
                    h[0] += count
                    h[1] = max(h[1], at)
                if key not in key_subjects:
                    key_subjects[key] = f"{subj[:i]}.json.status.{key}"
        acc.clear()
        snapshots = 0  # the answers to a (re)subscription are no rate for the connection either
        for key, (count, at) in heard.items():
            if not tracker.seen(key, count, at):
                snapshots += count
        if data:
            tracker.seen(CONNECTION, data - snapshots, last_data)

    def stall(self, scope: str) -> None:
        self.stalls[scope] = self.stalls.get(scope, 0) + 1

    def subscriptions(self, n: int) -> None:
        self._subs = n

    def connected(self, up: bool) -> None:
        self._connected = up

    def _delta(self, name: str, value: int) -> int:
        d = value - self._published.get(name, 0)
        self._published[name] = value
        return d

    def publish(self, counters: dict[str, int], pending: int, sink_queue: int) -> None:
        """Move counts into the Prometheus metrics (called by the watchdog tick, after
        :meth:`settle`); ``counters`` are the core processor's, ``pending`` the frames
        waiting for it."""
        self.counters = counters
        m = self.m
        if m is None:
            return
        v = self.venue
        for kind, (n, b) in self.kinds.items():
            dn, db = self._delta(f"k:{kind}", n), self._delta(f"b:{kind}", b)
            if dn:
                m.messages.labels(v, kind).inc(dn)
            if db:
                m.bytes.labels(v, kind).inc(db)
        c = self.counters
        for name, metric, value in (
            ("frames", m.frames, self.frames),
            ("frame_bytes", m.frame_bytes, c.get("bytes", 0)),
            ("controls", m.controls, self.controls),
            ("malformed", m.malformed, c.get("malformed", 0)),
            ("gaps", m.gaps, c.get("gaps", 0)),
            ("resyncs", m.resyncs, c.get("resyncs", 0)),
            ("disconnects", m.disconnects, self.disconnects),
            ("reconnects", m.reconnects, self.reconnects),
            ("venue_errors", m.venue_errors, self.venue_errors),
        ):
            d = self._delta(name, value)
            if d > 0:
                metric.labels(v).inc(d)
        for scope, n in self.stalls.items():
            d = self._delta(f"s:{scope}", n)
            if d:
                m.stalls.labels(v, scope).inc(d)
        m.subscriptions.labels(v, self.conn).set(self._subs)
        m.connected.labels(v, self.conn).set(1 if self._connected else 0)
        m.pending_frames.labels(v, self.conn).set(pending)
        m.sink_queue.labels(v).set(sink_queue)
