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

Frames are batched per event-loop tick: the picows listener appends
``(payload, rx)`` and schedules one processing callback with
``loop.call_soon``; that callback hands the whole batch to the Rust core once,
writes ``batch.lines()`` to the sink, gives ``batch.controls`` to the venue
session and ``batch.resyncs`` to the resync path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from ssmd.errors import ClassifiedError, ErrorClass, classify
from ssmd.runtime.backoff import Backoff
from ssmd.runtime.desired import SubscriptionState
from ssmd.runtime.stats import ConnectionStats
from ssmd.runtime.status import status_line, status_subject
from ssmd.runtime.venue import Connector, ControlEvent, VenueSession
from ssmd.runtime.watchdog import CONNECTION, HEARTBEAT, ActivityTracker, Stall

if TYPE_CHECKING:
    from ssmd.core import Batch
    from ssmd.runtime.metrics import Metrics

__all__ = ["CaptureLink", "Connection"]

log = logging.getLogger("ssmd.connect")

#: process the pending frames at once when this many are waiting (one socket read can
#: bring thousands: this bounds the frames, lines and groups of one core batch)
MAX_PENDING = 1000
#: a connection that stayed up this long resets the backoff
HEALTHY_AFTER = 10.0
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_time_ns = time.time_ns


class _Listener(WSListener):
    """picows callbacks: copy payloads out, answer Pings, note the close."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn
        self._frag: list[bytes] | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        if (mt is _TEXT or mt is _BINARY) and frame.fin:  # the hot path: push inlined
            conn = self.conn
            frames = conn._frames
            frames.append(frame.get_payload_as_bytes())
            conn._rxs.append(_time_ns())
            if not conn._scheduled:
                conn._scheduled = True
                conn._loop.call_soon(conn.drain)
            elif len(frames) >= MAX_PENDING:
                conn.drain()
            return
        self._other(transport, frame, mt)

    def _other(self, transport: WSTransport, frame: WSFrame, mt: WSMsgType) -> None:
        conn = self.conn
        if mt is WSMsgType.TEXT or mt is WSMsgType.BINARY:
            self._frag = [frame.get_payload_as_bytes()]
        elif mt is WSMsgType.CONTINUATION:
            if self._frag is not None:
                self._frag.append(frame.get_payload_as_bytes())
                if frame.fin:
                    conn.push(b"".join(self._frag))
                    self._frag = None
        elif mt is WSMsgType.PING:
            conn.last_rx = time.monotonic()
            transport.send_pong(frame.get_payload_as_bytes())
        elif mt is WSMsgType.PONG:
            conn.last_rx = time.monotonic()
        elif mt is WSMsgType.CLOSE:
            conn.close_reason = conn.close_reason or (
                f"closed by venue ({frame.get_close_code().value} {frame.get_close_reason()})".strip()
            )
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.conn.live_transport = None


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


class Connection:
    """One shard of a venue capture, reconnected until the capture stops."""

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
        self._frames: list[bytes] = []
        self._rxs: list[int] = []
        self._scheduled = False
        self._loop = asyncio.get_running_loop()
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
                        lambda: _Listener(self),
                        url,
                        extra_headers=self.connector.auth_headers(url),
                        enable_auto_pong=False,
                        max_frame_size=self.config.max_frame_size,
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
            self._set_recv_buffer(transport, self.config.recv_buffer)
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

    def push(self, payload: bytes) -> None:
        """Called by the listener for every complete data frame."""
        self._frames.append(payload)
        self._rxs.append(time.time_ns())
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.drain)
        elif len(self._frames) >= MAX_PENDING:
            self.drain()

    @property
    def pending(self) -> int:
        return len(self._frames)

    def drain(self) -> None:
        """Process every pending frame in one core call (the batch callback)."""
        self._scheduled = False
        frames = self._frames
        if not frames:
            return
        rxs = self._rxs
        self._frames = []
        self._rxs = []
        try:
            self._process(frames, rxs)
        except Exception as exc:
            self.link.fail(exc)

    def _process(self, frames: list[bytes], rxs: list[int]) -> None:
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

    @staticmethod
    def _set_recv_buffer(transport: WSTransport, size: int) -> None:
        under = getattr(transport, "underlying_transport", None)
        sock = under.get_extra_info("socket") if under is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def pause_reading(self) -> None:
        """Stop reading the socket (flow control: the sink is behind)."""
        t = self.transport
        if t is not None and not t.is_disconnected:
            with contextlib.suppress(Exception):
                t.underlying_transport.pause_reading()

    def resume_reading(self, paused: float) -> None:
        """Read again after a pause of ``paused`` seconds, which is not silence."""
        self.last_rx += paused
        self.tracker.shift(paused)
        t = self.transport
        if t is not None and not t.is_disconnected:
            with contextlib.suppress(Exception):
                t.underlying_transport.resume_reading()

    # -- requests --------------------------------------------------------

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

    # -- watchdog --------------------------------------------------------

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
