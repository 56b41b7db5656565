"""Requests to the venue: subscriptions of the desired set, book resyncs, control events.

Every change of what a connection subscribes goes through here: ``add`` and
``remove`` change the desired set (subscribed now when the connection is
live), ``redrive`` unsubscribes then subscribes again, never subscribing an
instrument twice, ``resync`` asks for fresh book snapshots. Control frames
(acks, errors, PONG) go to the venue's session, and the events it returns
are acted on here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from picows import WSMsgType

from ssmd.runtime.desired import SubscriptionState
from ssmd.runtime.intake import FrameIntake
from ssmd.runtime.stats import ConnectionStats
from ssmd.runtime.venue import Connector, ControlEvent, VenueSession
from ssmd.runtime.watchdog import HEARTBEAT

if TYPE_CHECKING:
    from ssmd.core import Processor

__all__ = ["SubscriptionRequests"]

log = logging.getLogger("ssmd.connect")


class SubscriptionRequests(FrameIntake):
    """The request side of a connection (a base of :class:`~ssmd.runtime.supervisor.Connection`)."""

    conn_id: str
    connector: Connector
    session: VenueSession | None
    subs: SubscriptionState
    #: watchdog key -> instruments of this connection that carry it
    keys: dict[str, set[str]]
    #: watchdog key -> status subject for lines about it
    key_subjects: dict[str, str]
    processor: Processor
    stats: ConnectionStats
    #: seconds within which the venue promises some frame (heartbeats), if it does
    heartbeat: float | None

    @property
    def live(self) -> bool:
        raise NotImplementedError

    def record(self, event: str, detail: dict[str, Any], subject: str | None = None) -> None:
        """Write an ssmd status line into the sink, in order with the data."""
        raise NotImplementedError

    def send(self, messages: Sequence[bytes]) -> None:
        t = self.transport
        if t is None or not messages or t.is_disconnected or t.is_close_frame_sent:
            return
        for m in messages:
            t.send(WSMsgType.TEXT, m)

    def _subscribe(self, instruments: Sequence[str]) -> None:
        if instruments and self.session is not None:
            self.send(self.session.subscribe(instruments))

    def _unsubscribe(self, instruments: Sequence[str]) -> None:
        if instruments and self.session is not None:
            self.send(self.session.unsubscribe(instruments))

    def add(self, instruments: Sequence[str]) -> None:
        """Desire ``instruments`` on this connection (subscribed now if live)."""
        now = time.monotonic()
        cadence = self.connector.cadence()
        for inst in instruments:
            key = self.connector.subject_id(inst)
            self.keys.setdefault(key, set()).add(inst)
            self.tracker.watch(key, now, cadence)  # its silence counts from its subscription
        if self.heartbeat is not None and self.live and HEARTBEAT not in self.tracker:
            self.tracker.watch(HEARTBEAT, now, self.heartbeat)  # the first subscription
        self._subscribe(self.subs.add(instruments))
        self.stats.subscriptions(len(self.subs))

    def remove(self, instruments: Sequence[str]) -> None:
        """Stop desiring ``instruments`` (unsubscribed now if live)."""
        self._unsubscribe(self.subs.remove(instruments))
        self.processor.forget(list(instruments))  # its book/sequence state goes too
        for inst in instruments:
            key = self.connector.subject_id(inst)
            owners = self.keys.get(key)
            if owners is not None:
                owners.discard(inst)
                if not owners:
                    del self.keys[key]
                    self.key_subjects.pop(key, None)
                    self.tracker.forget(key)
        self.stats.subscriptions(len(self.subs))

    def redrive(self, instruments: Sequence[str]) -> list[str]:
        """Unsubscribe then subscribe again on this connection (never twice)."""
        redo = self.subs.redrive(instruments)
        self._unsubscribe(redo)
        self._subscribe(redo)
        if redo:  # a new subscription: the silence clock restarts
            now = time.monotonic()
            cadence = self.connector.cadence()
            for inst in redo:
                self.tracker.watch(self.connector.subject_id(inst), now, cadence)
        return redo

    def resync(self, instruments: Sequence[str]) -> None:
        """Fresh book snapshots for ``instruments`` (gap or checksum mismatch)."""
        if self.session is None:
            return
        wanted = [i for i in dict.fromkeys(instruments) if i in self.subs.venue]
        if wanted:
            log.info("%s: resync %s", self.conn_id, ", ".join(wanted[:10]))
            self.send(self.session.resync(wanted))
            self.stats.resync_requests += len(wanted)

    def _controls(self, controls: list[tuple[str, bytes]]) -> None:
        session = self.session
        if session is None:
            return
        self.stats.controls += len(controls)
        for kind, raw in controls:
            events, out = session.on_control(kind, raw)
            self.send(out)
            for ev in events:
                self._event(ev)

    def _event(self, ev: ControlEvent) -> None:
        if ev.kind == "error":
            self.stats.venue_errors += 1
            log.warning(
                "%s: venue error: %s%s",
                self.conn_id,
                ev.message[:200],
                f" ({', '.join(ev.instruments[:5])})" if ev.instruments else "",
            )
        elif ev.kind == "resubscribe":  # the venue asks for it: unsubscribe + subscribe
            redo = self.redrive(ev.instruments)
            self.record("resync", {"reason": ev.message or "venue", "instruments": redo[:100]})
        elif ev.kind == "resubscribed":  # the session already sent a fresh subscription
            self.stats.venue_errors += 1
            log.warning("%s: %s; subscribed %s again", self.conn_id, ev.message, ev.channel)
            detail = {
                "reason": ev.message,
                "channel": ev.channel,
                "instruments": list(ev.instruments[:100]),
            }
            self.record("resync", detail)
        elif ev.kind == "info" and ev.message:
            log.info("%s: %s", self.conn_id, ev.message[:200])
