"""One venue connection, kept alive: connect → authenticate → subscribe → read.

:class:`Connection` is the per-connection task. On every (re)connection it
signs a fresh upgrade (the venue's auth headers), opens the WebSocket
(picows), resets the core processor's sequence and book state after a
reconnect, records a ``reconnect`` status line, and subscribes exactly its
desired share of instruments (:class:`~ssmd.runtime.desired.SubscriptionState`).
When the connection ends (close, error, keep-alive timeout, whole-connection
stall) it processes what is buffered, records a ``disconnect`` status line,
and reconnects after an exponential backoff with full jitter; what to do about
an error is decided from its class alone (:func:`ssmd.errors.classify`): an
exception it does not know is a bug and ends the capture, never a reconnect loop.

Frames are batched per event-loop tick (:mod:`.intake`); :meth:`Connection.handle`
hands the whole batch to the Rust core once, the lines to the sink through the
capture (:class:`CaptureLink`), ``batch.controls`` to the venue session and
``batch.resyncs`` to the resync path (:mod:`.requests`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from picows import WSCloseCode, WSMsgType, WSTransport, ws_connect

from ssmd.errors import ClassifiedError, ErrorClass, classify
from ssmd.runtime.backoff import Backoff
from ssmd.runtime.desired import SubscriptionState
from ssmd.runtime.intake import Listener
from ssmd.runtime.stalls import StallWatch
from ssmd.runtime.stats import ConnectionStats
from ssmd.runtime.status import status_line, status_subject
from ssmd.runtime.venue import Connector, VenueSession
from ssmd.runtime.watchdog import HEARTBEAT, ActivityTracker

if TYPE_CHECKING:
    from ssmd.core import Batch
    from ssmd.runtime.metrics import Metrics

__all__ = ["CaptureLink", "Connection"]

log = logging.getLogger("ssmd.connect")

#: a connection that stayed up this long resets the backoff
HEALTHY_AFTER = 10.0
#: the WebSocket layer refuses frames over this many times ``max_frame_size`` (close
#: 1009, then a reconnect); between the two the core archives a frame as malformed
FRAME_HARD_LIMIT = 4


class CaptureLink(Protocol):
    """What a :class:`Connection` asks of the capture that owns it; nothing else is shared."""

    @property
    def stopping(self) -> bool:
        """The capture is shutting down: do not reconnect."""
        ...

    @property
    def reading_paused(self) -> bool:
        """Flow control holds every socket (the sink is behind): silence is ours."""
        ...

    def deliver(self, batch: Batch) -> list[tuple[str, int, int]]:
        """Hand a core batch to the sink; returns its ``(subject, lines, bytes)`` for the counts."""
        ...

    def write_status(self, subject: str, line: bytes, msg_id: str) -> None:
        """Hand one status line to the sink, in order with the data."""
        ...

    def fail(self, exc: BaseException) -> None:
        """This connection cannot go on (a bug, a refused upgrade, a broken sink): stop."""
        ...


class Connection(StallWatch):
    """One shard of a venue capture, reconnected until the capture stops.

    This module holds its life (connect, serve, reconnect, keep-alive) and its
    status lines; its jobs are split over its bases by module: frames in
    (:mod:`.intake`), requests to the venue (:mod:`.requests`) and stalls acted
    on (:mod:`.stalls`).
    """

    def __init__(
        self,
        link: CaptureLink,
        connector: Connector,
        index: int,
        *,
        conn_prefix: str,
        env: str,
        stall_timeout: float,
        backoff: Backoff,
        metrics: Metrics | None = None,
    ) -> None:
        self.link = link
        self.connector = connector
        self.config = connector.config
        self.index = index
        self.conn_id = f"{conn_prefix}-{index}"
        self.env = env
        self._status_no = 0
        self.venue = connector.venue
        self.processor = connector.new_processor(self.conn_id, env)
        self.subs = SubscriptionState()
        self.tracker = ActivityTracker(stall_timeout)
        #: seconds within which the venue promises some frame (heartbeats), if it does
        self.heartbeat = self.connector.heartbeat_cadence()
        self._heard = 0.0  # last_rx last reported to the tracker's heartbeat key
        #: watchdog key -> instruments of this connection that carry it
        self.keys: dict[str, set[str]] = {}
        #: watchdog key -> status subject for lines about it
        self.key_subjects: dict[str, str] = {}
        self.backoff = backoff
        self.session: VenueSession | None = None
        self.live_transport: WSTransport | None = None
        self.transport: WSTransport | None = None
        self.close_reason: str | None = None
        self.last_rx = 0.0
        self.connected_at = 0.0
        self.connects = 0
        self.attempts = 0
        self.last_failure: str | None = None
        self.failed: BaseException | None = None
        self.init_intake()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self.stats = ConnectionStats(self.venue, self.conn_id, metrics)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"ssmd-{self.conn_id}")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    @property
    def live(self) -> bool:
        return self.transport is not None and self.session is not None

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failed = exc
            self.link.fail(exc)

    async def _run(self) -> None:
        url = self.connector.ws_url
        while not self.link.stopping:
            self.attempts += 1
            try:
                # the TCP connect has no timeout of its own: bound the whole attempt
                transport, _ = await asyncio.wait_for(
                    ws_connect(
                        lambda: Listener(self),
                        url,
                        extra_headers=self.connector.auth_headers(url),
                        enable_auto_pong=False,
                        # room above the core's bound, so that a frame over it is
                        # archived as malformed instead of closing the connection
                        max_frame_size=FRAME_HARD_LIMIT * self.config.max_frame_size,
                        websocket_handshake_timeout=self.config.handshake_timeout,
                        logger_name=f"ssmd.{self.conn_id}",
                    ),
                    2 * self.config.handshake_timeout,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = classify(exc)
                self.last_failure = failure.reason
                if failure.cls is ErrorClass.FATAL:
                    raise  # a bug (in venue code, say): the capture ends with it
                if failure.cls is not ErrorClass.RETRYABLE:
                    raise ClassifiedError(
                        f"{self.venue}: cannot connect to {url}: {failure.reason}", failure.cls
                    ) from exc
                delay = self.backoff.next_delay(failure.retry_after)
                lvl = logging.WARNING if self.backoff.attempt <= 3 else logging.INFO
                log.log(
                    lvl,
                    "%s: connect failed (%s); retry in %.1fs",
                    self.conn_id,
                    failure.reason,
                    delay,
                )
                await self._pause(delay)
                continue
            if self._stopping():  # stopped while connecting
                transport.disconnect(graceful=False)
                break
            await self._serve(transport)
            if self._stopping():
                break
            delay = self.backoff.next_delay()
            log.info("%s: reconnecting in %.1fs", self.conn_id, delay)
            await self._pause(delay)

    def _stopping(self) -> bool:
        return self.link.stopping

    async def _pause(self, delay: float) -> None:
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    def wake(self) -> None:
        """Cut a backoff pause short (shutdown)."""
        self._wake.set()

    async def _serve(self, transport: WSTransport) -> None:
        self.opened(transport)
        keepalive = asyncio.create_task(self._keepalive(transport))
        try:
            await transport.wait_disconnected()
        except Exception as exc:
            self.close_reason = self.close_reason or classify(exc).reason
        finally:
            keepalive.cancel()
        up = self.closed()
        if up >= HEALTHY_AFTER:
            self.backoff.reset()

    def opened(self, transport: WSTransport) -> None:
        """A WebSocket is up: reset the core after a reconnect, record it, subscribe."""
        now = time.monotonic()
        self.transport = self.live_transport = transport
        self.close_reason = None
        if self.config.recv_buffer > 0:
            self.set_recv_buffer(transport, self.config.recv_buffer)
        if self.link.reading_paused:
            self.pause_reading()
        self.last_rx = self.connected_at = now
        self.connects += 1
        if self.connects > 1:
            self.processor.reset()
            down_ms = int((now - (self._down_since or now)) * 1000)
            self.record(
                "reconnect",
                {"attempts": self.attempts, "down_ms": down_ms, "instruments": len(self.subs)},
            )
            self.stats.reconnects += 1
            log.info("%s: reconnected after %d ms", self.conn_id, down_ms)
        else:
            log.info("%s: connected to %s", self.conn_id, self.connector.ws_url)
        self.attempts = 0
        session = self.connector.new_session(self.index)
        self.session = session
        self.tracker.restart(now)
        if self.heartbeat is not None and len(self.subs):
            self.tracker.watch(HEARTBEAT, now, self.heartbeat)
        self.send(session.on_open())
        self._subscribe(self.subs.connected())
        self.stats.connected(True)

    def closed(self) -> float:
        """The WebSocket is gone: process what is buffered, record it; returns the uptime."""
        self.drain()
        up = time.monotonic() - self.connected_at
        reason = self.close_reason or "connection lost"
        self.transport = self.live_transport = None
        self.session = None
        self.subs.disconnected()
        self._down_since = time.monotonic()
        self.stats.connected(False)
        self.stats.disconnects += 1
        self.record(
            "disconnect",
            {"reason": reason, "uptime_ms": int(up * 1000), "instruments": len(self.subs)},
        )
        if not self.link.stopping:
            log.warning("%s: disconnected (%s) after %.1fs", self.conn_id, reason, up)
        return up

    def close(self, reason: str, code: WSCloseCode = WSCloseCode.GOING_AWAY) -> None:
        """End the current connection (it is reconnected unless the capture stops)."""
        t = self.transport
        if t is None:
            return
        self.close_reason = self.close_reason or reason
        if not t.is_disconnected:
            try:
                t.send_close(code, reason.encode()[:120])
            finally:
                t.disconnect(graceful=False)

    async def _keepalive(self, transport: WSTransport) -> None:
        interval = self.config.ping_interval
        limit = self.config.liveness_timeout
        next_ping = time.monotonic() + interval
        step = max(0.05, min(1.0, interval / 2, limit / 4))
        while not transport.is_disconnected:
            await asyncio.sleep(step)
            now = time.monotonic()
            if self.link.reading_paused:
                continue  # not reading: silence is ours, not the venue's
            if now - self.last_rx > limit:
                log.warning("%s: nothing received for %.0fs; reconnecting", self.conn_id, limit)
                self.close(f"no frames for {limit:.0f}s")
                return
            if now >= next_ping and self.session is not None and not transport.is_close_frame_sent:
                next_ping = now + interval
                payload = self.session.ping()
                if payload is None:
                    transport.send_ping(b"ssmd")
                else:
                    transport.send(WSMsgType.TEXT, payload)

    # -- frames ----------------------------------------------------------

    def handle(self, frames: list[bytes], rxs: list[int]) -> None:
        """One batch of frames: one core call, the lines to the sink, controls and resyncs."""
        now = time.monotonic()
        self.last_rx = now
        batch = self.processor.process(frames, rxs)
        stats = self.stats
        stats.frames += len(frames)
        if len(batch):
            stats.account(batch, self.link.deliver(batch), now)
        if batch.controls:
            self._controls(batch.controls)
        if batch.resyncs:
            self.resync([inst for inst, _reason in batch.resyncs])

    def batch_failed(self, exc: Exception) -> None:
        self.link.fail(exc)

    # -- status lines ----------------------------------------------------

    def record(self, event: str, detail: dict[str, Any], subject: str | None = None) -> None:
        """Write an ssmd status line into the sink, in order with the data."""
        self.drain()
        subj = subject or status_subject(self.env, self.venue, self.conn_id)
        detail = {"conn": self.conn_id, **detail}
        self._status_no += 1
        self.link.write_status(
            subj,
            status_line(event, self.conn_id, subj, detail),
            f"{self.conn_id}:s{self._status_no}",
        )
        self.stats.status_lines += 1
