"""The watchdog's verdicts acted on: a stalled instrument is redriven, a stalled
connection reconnected, each recorded as a ``stall`` status line.

Once a tick the capture calls :meth:`StallWatch.check_stalls`: frames already
received are processed first (a starved event loop is not a stall), counts
are settled into the tracker, and the tracker (:mod:`.watchdog`) says what is
silent against its own rate, a promised cadence or the venue's heartbeats.
"""

from __future__ import annotations

import logging

from picows import WSCloseCode

from ssmd.runtime.requests import SubscriptionRequests
from ssmd.runtime.status import status_subject
from ssmd.runtime.watchdog import CONNECTION, HEARTBEAT, Stall

__all__ = ["StallWatch"]

log = logging.getLogger("ssmd.connect")


class StallWatch(SubscriptionRequests):
    """The stall side of a connection (a base of :class:`~ssmd.runtime.supervisor.Connection`)."""

    env: str
    venue: str
    connected_at: float
    #: ``last_rx`` last reported to the tracker's heartbeat key
    _heard: float

    def close(self, reason: str, code: WSCloseCode = WSCloseCode.GOING_AWAY) -> None:
        """End the current connection (it is reconnected unless the capture stops)."""
        raise NotImplementedError

    def on_stalls(self, stalls: list[Stall]) -> None:
        for st in stalls:
            if st.whole_connection:
                self.stats.stall("connection")
                self.record(
                    "stall",
                    {
                        "scope": "connection",
                        "basis": st.basis,
                        "silent_ms": int(st.silent * 1000),
                        "rate": round(st.rate, 3),
                        "action": "reconnect",
                    },
                )
                log.warning(
                    "%s: %s stall (%.1fs silent at %.1f msg/s); reconnecting",
                    self.conn_id,
                    "heartbeat" if st.basis == "heartbeat" else "data",
                    st.silent,
                    st.rate,
                )
                self.close("heartbeat stall" if st.basis == "heartbeat" else "data stall")
                return
            insts = sorted(self.keys.get(st.key, ()))
            redo = self.redrive(insts)
            self.stats.stall("instrument")
            subject = self.key_subjects.get(st.key) or status_subject(self.env, self.venue, st.key)
            self.record(
                "stall",
                {
                    "scope": "instrument",
                    "instrument": insts[0] if len(insts) == 1 else insts,
                    "basis": st.basis,
                    "silent_ms": int(st.silent * 1000),
                    "rate": round(st.rate, 3),
                    "action": "resubscribe" if redo else "none",
                },
                subject=subject,
            )
            log.warning(
                "%s: %s stalled (%.1fs silent at %.1f msg/s); resubscribing",
                self.conn_id,
                st.key,
                st.silent,
                st.rate,
            )

    def check_stalls(self, now: float) -> None:
        self.drain()  # frames already received count (a starved loop is not a stall)
        self.settle()
        if self.live and now - self.connected_at >= self.tracker.bound:
            if self.heartbeat is not None and self.last_rx > self._heard:
                self._heard = self.last_rx  # any frame from the venue is a heartbeat
                self.tracker.seen(HEARTBEAT, 1, self.last_rx)
            stalls = self.tracker.check(now)
            if stalls:
                # the whole connection first: it covers every instrument
                stalls.sort(key=lambda s: s.key != CONNECTION)
                self.on_stalls(stalls)

    def settle(self) -> None:
        """Fold the counts since the last tick into the totals and the watchdog."""
        self.stats.settle(self.tracker, self.keys, self.key_subjects)

    def publish(self, sink_queue: int) -> None:
        """Settle, then move the counts into the Prometheus metrics."""
        self.settle()
        self.stats.publish(self.processor.counters(), self.pending, sink_queue)
