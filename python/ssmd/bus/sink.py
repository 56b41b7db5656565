"""The connector's bus sink: confirmed, deduplicated, bounded publishing.

Each group of envelope lines of one subject (a micro-batch, docs/bus.md)
becomes one bus message with ``Nats-Msg-Id`` = the id of its first line
(``{conn}:{frame}.{index}``, fixed when the frame was received). Publishing
never waits for a round trip: messages go out as fast as the transport takes
them and the acknowledgements come back asynchronously.

Policy when the bus is slow or down (the stated default): everything not yet
acknowledged, queued or in flight, is kept up to ``max_pending_bytes``
(64 MiB). A message that is not acknowledged within ``ack_timeout`` seconds,
or that was in flight when the connection to the server dropped, is sent
again with the same id, so the server stores it once. When the bound is
full, new messages are dropped and counted per connection; once the backlog
has fallen to half the bound a ``gap`` status line (``reason: "bus"``, with
the number of lines and messages dropped and the first and last dropped ids)
is published for each connection that lost data, so the archive says where
data is missing. Memory never grows past the bound, except by the status
lines themselves (gaps, disconnects, stalls): those are never dropped, so
they may take the backlog a few hundred bytes each over it.

A message the server refuses for good (over its max payload, a subject it
cannot take, a stream that rejects that message) affects that message alone:
it is dropped, counted and recorded as a ``gap`` line (``cause`` saying
why), and everything else goes on. Refusals that pass (no stream yet,
storage full) are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from ssmd.errors import SinkError
from ssmd.runtime.backoff import Backoff
from ssmd.runtime.latency import LatencyHistogram, first_rx
from ssmd.runtime.status import status_line, status_subject

__all__ = ["BusSink", "Refused", "Transport", "TransportDown"]

log = logging.getLogger("ssmd.bus")

DEFAULT_MAX_PENDING = 64 << 20
#: reading the venue pauses while this much is unconfirmed at most (or a quarter of the bound)
DEFAULT_HIGH_WATER = 4 << 20
#: and at least this much, however slow the bus
MIN_HIGH_WATER = 256 << 10
#: unconfirmed data is kept to about this much time of what the bus confirms
DEFAULT_TARGET_DELAY = 0.02
DEFAULT_MAX_INFLIGHT = 256
#: bytes sent and not yet acknowledged at most; past it, later lines wait and merge
DEFAULT_MAX_INFLIGHT_BYTES = 1 << 20
MIN_INFLIGHT_BYTES = 64 << 10
#: how often the confirmed rate is measured, seconds
RATE_EVERY = 0.05


#: the cause of a gap left by a full backlog
BACKLOG = "backlog full"


class TransportDown(Exception):
    """The transport cannot take a message now (disconnected, buffer full)."""


class Refused(Exception):
    """The transport or server will never take this message (the text says why)."""


class Transport(Protocol):
    """Sends bus messages; reports acknowledgements to :meth:`BusSink.acked`."""

    @property
    def connected(self) -> bool: ...

    async def send(self, subject: str, data: bytes, msg_id: str, token: int) -> None:
        """Send one message; raise :class:`TransportDown` when it cannot."""

    async def flush(self) -> None:
        """Push buffered bytes to the server (best effort)."""


class _Pub:
    __slots__ = (
        "attempts",
        "data",
        "lines",
        "more",
        "msg_id",
        "parts",
        "sent",
        "size",
        "subject",
    )

    def __init__(self, subject: str, data: bytes, msg_id: str, lines: int) -> None:
        self.subject = subject
        self.data = data
        self.more: list[bytes] | None = None  # merged groups, joined before the first send
        self.size = len(data)
        self.msg_id = msg_id
        self.lines = lines
        #: (receive time of the first line, lines) of each merged group, for the latency
        self.parts: list[tuple[int, int]] | None = None
        self.sent = 0.0
        self.attempts = 0

    def seal(self) -> bytes:
        if self.more:
            self.data = b"".join([self.data, *self.more])
            self.more = None
        return self.data


class _Drop:
    __slots__ = ("cause", "first_id", "last_id", "lines", "messages", "since")

    def __init__(self, msg_id: str, cause: str) -> None:
        self.cause = cause
        self.first_id = msg_id
        self.last_id = msg_id
        self.lines = 0
        self.messages = 0
        self.since = time.time_ns()


class BusSink:
    """The :class:`ssmd.runtime.sink.Sink` of the bus path (NATS or in-process).

    Call :meth:`start` on the running loop before the first write and
    :meth:`aclose` at the end; ``write_*`` are synchronous and never block.
    """

    wants_groups = True
    #: what :attr:`latency` measures: receive time to acknowledged by JetStream
    latency_stage = "acked"
    #: a pause of the venue sockets longer than this ends; then the drop policy applies
    max_pause: float | None = 5.0

    def __init__(
        self,
        transport: Transport,
        *,
        env: str,
        venue: str,
        max_pending_bytes: int = DEFAULT_MAX_PENDING,
        ack_timeout: float = 5.0,
        merge_bytes: int = 256 << 10,
        high_water: int | None = None,
        close_timeout: float = 30.0,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
        target_delay: float = DEFAULT_TARGET_DELAY,
        metrics: Any = None,
    ) -> None:
        if max_pending_bytes <= 0:
            raise SinkError("max_pending_bytes must be positive")
        self.transport = transport
        self.env = env
        self.venue = venue
        self.max_pending_bytes = max_pending_bytes
        self.close_timeout = close_timeout
        #: messages sent and not yet acknowledged; past it, later lines wait and merge
        #: into fewer, larger messages (the server's cost is per message and per byte)
        self.max_inflight = max(1, max_inflight)
        #: and at most this many bytes (one message always goes, however large)
        self.max_inflight_bytes = max(1, max_inflight_bytes)
        self._inflight_bytes = 0
        self._blocked = False  # the pump stopped at the window: acks wake it at half
        #: receive time of a line to its acknowledgement, per line
        self.latency = LatencyHistogram()
        # Reading pauses well below the bound: one socket read after a pause can
        # bring what the kernel buffered meanwhile, and what is unconfirmed is held
        # more than once on its way out (the message, nats-py's command, the socket's
        # buffer), so the mark is what bounds the memory at full speed. It follows
        # the bus: about ``target_delay`` seconds of what the server confirms (between
        # 256 KiB and the most), and so does the in-flight window (half of it), so a
        # line waits about that long at full speed, not what a fixed mark holds.
        self._mark_max = (
            min(max_pending_bytes // 4, DEFAULT_HIGH_WATER) if high_water is None else high_water
        )
        self.target_delay = target_delay if high_water is None else 0.0
        self._high_water = self._mark_max
        self._inflight_cap = self.max_inflight_bytes
        self._acked_bytes = 0
        self._rate = 0.0  # bytes/s confirmed: rises at once, falls slowly
        self._rate_at = time.monotonic()
        self._rate_base = 0
        self.ack_timeout = ack_timeout
        self.metrics = metrics
        self._queue: deque[_Pub] = deque()
        # unsent messages still open for more lines of their subject
        self._open: dict[str, _Pub] = {}
        self.merge_bytes = merge_bytes
        self._inflight: dict[int, _Pub] = {}
        self._token = 0
        self.pending_bytes = 0
        self._drops: dict[tuple[str, str], _Drop] = {}  # (conn, cause) -> episode
        self._gap_no = 0
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = False
        self._retry_at = 0.0
        #: pause before sending a refused message again (full jitter, 0.05 s doubling up to 2 s)
        self._backoff = Backoff(base=0.05, cap=2.0)
        self._errors_logged = 0.0
        # counters
        self.lines_in = 0  # lines handed to put()
        self.merged = 0  # groups merged into a waiting message of their subject
        self.published = 0  # messages acknowledged (incl. duplicates)
        self.lines_acked = 0
        self.duplicates = 0
        self.resent = 0
        self.dropped_lines = 0
        self.dropped_messages = 0
        self.gaps = 0
        self.nacks = 0
        self.refused = 0  # messages the server will never take (dropped, gap recorded)

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        limit = int(getattr(self.transport, "max_payload", 0) or 0)
        if limit:  # merged messages stay well inside what the server takes
            self.merge_bytes = max(1, min(self.merge_bytes, limit // 2))
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks = [
            asyncio.create_task(self._pump(), name=f"ssmd-bus-pump-{self.venue}"),
            asyncio.create_task(self._timer(), name=f"ssmd-bus-timer-{self.venue}"),
        ]

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything written is acknowledged; False on timeout."""
        assert self._idle is not None, "start() first"
        self._kick()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float | None = None) -> None:
        """Publish what is left (up to ``timeout``, default ``close_timeout`` s), then stop."""
        if self._closed:
            return
        if timeout is None:
            timeout = self.close_timeout
        self._closing = True
        self._flush_drops(force=True)
        done = await self.drain(timeout) if self._tasks else True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._closed = True
        left = len(self._queue) + len(self._inflight)
        if not done and left:
            lines = sum(p.lines for p in self._queue) + sum(
                p.lines for p in self._inflight.values()
            )
            log.error(
                "%s: %d bus message(s) (%d lines) not confirmed at shutdown",
                self.venue,
                left,
                lines,
            )
            raise SinkError(f"{left} bus message(s) ({lines} lines) not confirmed by the server")

    # -- the Sink interface ----------------------------------------------

    def write_batch(self, batch: Any, groups: Sequence[tuple[str, bytes, int, str]]) -> None:
        for subject, lines, count, first_id in groups:
            self.put(subject, lines, first_id, count)

    def write_status(self, subject: str, line: bytes, msg_id: str) -> None:
        self.put(subject, line, msg_id, 1, bounded=False)

    def write(self, lines: bytes) -> None:  # pragma: no cover - bus lines need ids
        raise SinkError("the bus sink needs subjects and ids: use write_batch/write_status")

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        """Synchronous close is not possible on the bus: use :meth:`aclose`."""
        if not self._closed:
            self._closing = True

    @property
    def queued_bytes(self) -> int:
        return self.pending_bytes

    @property
    def high_water(self) -> int:
        """Reading pauses here: ``target_delay`` of the confirmed rate, 256 KiB..4 MiB (or as set)."""
        if self.target_delay > 0:
            self._adapt(time.monotonic())
        return self._high_water

    def _adapt(self, now: float) -> None:
        """Move the pause mark and the in-flight window with the confirmed rate."""
        dt = now - self._rate_at
        if dt < RATE_EVERY:
            return
        r = (self._acked_bytes - self._rate_base) / dt
        self._rate = r if r >= self._rate else 0.8 * self._rate + 0.2 * r
        self._rate_at, self._rate_base = now, self._acked_bytes
        budget = int(self._rate * self.target_delay)
        self._high_water = min(self._mark_max, max(MIN_HIGH_WATER, budget))
        self._inflight_cap = min(self.max_inflight_bytes, max(MIN_INFLIGHT_BYTES, budget // 2))

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def unconfirmed_lines(self) -> int:
        """Lines written and not yet acknowledged (queued or in flight)."""
        return sum(p.lines for p in self._queue) + sum(p.lines for p in self._inflight.values())

    # -- core --------------------------------------------------------------

    def put(self, subject: str, data: bytes, msg_id: str, lines: int, bounded: bool = True) -> None:
        if self._closed:
            raise SinkError("bus sink is closed")
        self.lines_in += lines
        n = len(data)
        if bounded and self.pending_bytes + n > self.max_pending_bytes:
            self._drop(msg_id, lines)
            return
        if bounded and self._drops:
            self._flush_drops()
        self.pending_bytes += n
        if self._idle is not None and self._idle.is_set():
            self._idle.clear()
        if not bounded:
            # a status line: later data must not move ahead of it
            self._open.clear()
            self._queue.append(_Pub(subject, data, msg_id, lines))
        else:
            p = self._open.get(subject)
            if p is not None and p.size + n <= self.merge_bytes:
                # the pump is behind: grow the waiting message of this subject
                # (its id stays the id of its first line, fixed before any send)
                if p.more is None:
                    p.more = [data]
                    p.parts = [(first_rx(p.data), p.lines), (first_rx(data), lines)]
                else:
                    p.more.append(data)
                    if p.parts is not None:
                        p.parts.append((first_rx(data), lines))
                p.size += n
                p.lines += lines
                self.merged += 1
                return
            p = _Pub(subject, data, msg_id, lines)
            self._open[subject] = p
            self._queue.append(p)
        self._kick()

    def _kick(self) -> None:
        w = self._wake
        if w is not None and not w.is_set():
            w.set()

    def _drop(self, msg_id: str, lines: int, cause: str = BACKLOG) -> None:
        conn = msg_id.rpartition(":")[0] or msg_id
        d = self._drops.get((conn, cause))
        if d is None:
            d = self._drops[conn, cause] = _Drop(msg_id, cause)
            if cause == BACKLOG:
                log.warning(
                    "%s: bus backlog full (%d of %d bytes): dropping messages of %s until it drains",
                    self.venue,
                    self.pending_bytes,
                    self.max_pending_bytes,
                    conn,
                )
        if cause != BACKLOG:
            self.refused += 1
            log.error(
                "%s: the bus refused message %s (%d line(s)): %s; recorded as a gap",
                self.venue,
                msg_id,
                lines,
                cause,
            )
        d.last_id = msg_id
        d.lines += lines
        d.messages += 1
        self.dropped_lines += lines
        self.dropped_messages += 1
        if self.metrics is not None:
            self.metrics.bus_dropped.labels(self.venue).inc(lines)

    def _flush_drops(self, force: bool = False) -> None:
        """Publish the gap lines of finished drop episodes (backlog at half the bound)."""
        if not self._drops or (not force and self.pending_bytes > self.max_pending_bytes // 2):
            return
        drops, self._drops = self._drops, {}
        for (conn, _cause), d in drops.items():
            self._gap_no += 1
            self.gaps += 1
            subject = status_subject(self.env, self.venue, conn)
            detail = {
                "reason": "bus",
                "cause": d.cause,
                "conn": conn,
                "dropped_lines": d.lines,
                "dropped_messages": d.messages,
                "first_id": d.first_id,
                "last_id": d.last_id,
                "since": d.since,
            }
            line = status_line("gap", conn, subject, detail)
            log.warning(
                "%s: %s lost %d line(s) in %d message(s) on the bus (%s)",
                self.venue,
                conn,
                d.lines,
                d.messages,
                d.cause,
            )
            self.put(subject, line, f"{conn}:busgap.{self._gap_no}", 1, bounded=False)

    def acked(
        self,
        token: int,
        ok: bool,
        duplicate: bool = False,
        error: str = "",
        permanent: bool = False,
    ) -> None:
        """An acknowledgement (or a negative one) for the message sent as ``token``.

        A ``permanent`` refusal drops that message (recorded as a gap); any other
        is retried after a pause.
        """
        p = self._inflight.pop(token, None)
        if p is None:
            return  # a late answer to a message already sent again
        self._inflight_bytes -= p.size
        if not ok and permanent:
            self._refuse(p, f"refused by the server: {error}")
            return
        if ok:
            self.pending_bytes -= p.size
            self._acked_bytes += p.size
            self.published += 1
            now_ns = time.time_ns()
            if p.parts is None:
                self.latency.observe_since(first_rx(p.data), now_ns, p.lines)
            else:
                for rx, n in p.parts:
                    self.latency.observe_since(rx, now_ns, n)
            if (
                self._blocked
                and len(self._inflight) <= self.max_inflight // 2
                and self._inflight_bytes <= self._inflight_cap // 2
            ):
                self._blocked = False
                self._kick()  # the window has room again
            self.lines_acked += p.lines
            if duplicate:
                self.duplicates += 1
            if self._drops:
                self._flush_drops()
            if not self._queue and not self._inflight and self._idle is not None:
                self._idle.set()
            return
        # refused (no stream yet, storage full, ...): send again after a pause
        self.nacks += 1
        now = time.monotonic()
        if now - self._errors_logged > 5.0:
            self._errors_logged = now
            log.warning("%s: bus refused %s: %s; retrying", self.venue, p.subject, error)
        self._queue.appendleft(p)
        self._retry_at = now + self._backoff.delay(p.attempts - 1)
        self._kick()

    def _refuse(self, p: _Pub, cause: str) -> None:
        """``p`` can never be published: drop it alone and record the gap."""
        self.pending_bytes -= p.size
        self._drop(p.msg_id, p.lines, cause)
        self._flush_drops()
        if self._queue and len(self._inflight) < self.max_inflight:
            self._blocked = False
            self._kick()
        elif not self._queue and not self._inflight and self._idle is not None:
            self._idle.set()

    def reconnected(self) -> None:
        """The transport came back: what was in flight may be lost, send it again."""
        if not self._inflight:
            self._kick()
            return
        again = list(self._inflight.values())
        self._inflight.clear()
        self._inflight_bytes = 0
        self.resent += len(again)
        self._queue.extendleft(reversed(again))
        self._kick()

    async def _pump(self) -> None:
        assert self._wake is not None
        wake = self._wake
        t = self.transport
        q = self._queue
        inflight = self._inflight
        while True:
            await wake.wait()
            wake.clear()
            delay = self._retry_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = 0
            opened = self._open
            window = self.max_inflight
            if self.target_delay > 0:
                self._adapt(time.monotonic())
            max_bytes = self._inflight_cap
            while q and t.connected:
                if inflight and (len(inflight) >= window or self._inflight_bytes >= max_bytes):
                    self._blocked = True  # acks wake the pump when half the window is free
                    break
                p = q.popleft()
                if opened.get(p.subject) is p:
                    del opened[p.subject]
                self._token += 1
                token = self._token
                p.sent = time.monotonic()
                p.attempts += 1
                inflight[token] = p
                self._inflight_bytes += p.size
                try:
                    await t.send(p.subject, p.seal(), p.msg_id, token)
                except TransportDown:
                    if inflight.pop(token, None) is not None:
                        self._inflight_bytes -= p.size
                        q.appendleft(p)
                    break
                except Refused as exc:  # this message only: the rest goes on
                    if inflight.pop(token, None) is not None:
                        self._inflight_bytes -= p.size
                        self._refuse(p, str(exc))
                    continue
                except Exception as exc:  # unclassified: still this message alone, said so
                    if inflight.pop(token, None) is not None:
                        self._inflight_bytes -= p.size
                        self._refuse(p, f"cannot publish: {type(exc).__name__}: {exc}")
                    continue
                sent += 1
                if sent % 512 == 0:
                    await asyncio.sleep(0)  # let acks and frames in
            if sent:
                with contextlib.suppress(Exception):
                    await t.flush()
            if not q and not inflight and self._idle is not None:
                self._idle.set()

    async def _timer(self) -> None:
        """Send again what was not acknowledged in time."""
        period = max(0.05, self.ack_timeout / 4)
        reported = 0
        while True:
            await asyncio.sleep(period)
            m = self.metrics
            if m is not None:
                m.bus_pending.labels(self.venue).set(self.pending_bytes)
                if self.lines_acked > reported:
                    m.bus_published.labels(self.venue).inc(self.lines_acked - reported)
                    reported = self.lines_acked
            if not self._inflight or not self.transport.connected:
                continue
            limit = time.monotonic() - self.ack_timeout
            late = []
            for token, p in self._inflight.items():
                if p.sent > limit:
                    break
                late.append(token)
            if late:
                again = [self._inflight.pop(tok) for tok in late]
                self._inflight_bytes -= sum(p.size for p in again)
                self.resent += len(again)
                if m is not None:
                    m.bus_resent.labels(self.venue).inc(len(again))
                log.warning(
                    "%s: %d bus message(s) unacknowledged after %.1fs; sending again",
                    self.venue,
                    len(again),
                    self.ack_timeout,
                )
                self._queue.extendleft(reversed(again))
                self._kick()

    def stats(self) -> dict[str, int]:
        return {
            "lines_in": self.lines_in,
            "published": self.published,
            "lines_acked": self.lines_acked,
            "duplicates": self.duplicates,
            "resent": self.resent,
            "dropped_lines": self.dropped_lines,
            "dropped_messages": self.dropped_messages,
            "gaps": self.gaps,
            "nacks": self.nacks,
            "refused": self.refused,
            "merged": self.merged,
            "pending_bytes": self.pending_bytes,
            "inflight": len(self._inflight),
            "inflight_bytes": self._inflight_bytes,
            "high_water": self._high_water,
            "queued": len(self._queue),
        }
