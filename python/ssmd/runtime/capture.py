"""A venue capture: the desired set sharded over supervised connections.

:class:`Capture` owns the venue connector, the sink, the shard plan and one
:class:`~ssmd.runtime.supervisor.Connection` per shard. Every change of the
instrument set, at start-up or at run time (the CDC feed of a later issue),
goes through :meth:`Capture.add` / :meth:`Capture.remove`
(:meth:`Capture.set_desired` computes both from a full set). A watchdog tick
checks every connection for data stalls and publishes metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import httpx

from ssmd.connectors.base import InstrumentQuery, VenueConnector
from ssmd.core import Batch
from ssmd.errors import ConnectorError, SsmdError
from ssmd.runtime.desired import ShardPlan
from ssmd.runtime.flow import FlowControl
from ssmd.runtime.metrics import metrics
from ssmd.runtime.shutdown import StopSignal, install_stop_signals
from ssmd.runtime.sink import Sink
from ssmd.runtime.supervisor import _NOT_DATA, Connection
from ssmd.runtime.watchdog import CONNECTION
from ssmd.types import Venue

if TYPE_CHECKING:
    from ssmd.runtime.metrics import Metrics

__all__ = ["Capture", "ConnectionStats", "default_writer", "run_capture"]

log = logging.getLogger("ssmd.connect")


def default_writer() -> str:
    """The writer name: the host name (without domain)."""
    return (socket.gethostname() or "ssmd").split(".", 1)[0] or "ssmd"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "ssmd"


class ConnectionStats:
    """Plain counters of one connection, moved to Prometheus once a second."""

    #: the lag histogram samples one batch per this many seconds
    LAG_EVERY = 0.5

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

    def account(
        self,
        batch: Batch,
        subjects: list[tuple[str, int, int]],
        conn: Connection,
        now: float,
    ) -> None:
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
            for msg in batch.messages():
                ts = msg.get("ts_ms")
                if ts:
                    h.observe(max(0.0, (now_ms - ts) / 1000.0))

    def settle(self, conn: Connection) -> None:
        """Fold the accumulated subjects into per-kind totals and watchdog activity."""
        acc = self._acc
        if not acc:
            return
        tracker = conn.tracker
        keys = conn.keys
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
            if kind in _NOT_DATA:
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
                if key not in conn.key_subjects:
                    conn.key_subjects[key] = f"{subj[:i]}.json.status.{key}"
        acc.clear()
        for key, (count, at) in heard.items():
            tracker.seen(key, count, at)
        if data:
            tracker.seen(CONNECTION, data, last_data)

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

    def publish(self, conn: Connection, sink_queue: int) -> None:
        """Move counts into the Prometheus metrics (called by the watchdog tick)."""
        self.settle(conn)
        self.counters = conn.processor.counters()
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
        m.pending_frames.labels(v, self.conn).set(conn.pending)
        m.sink_queue.labels(v).set(sink_queue)


class Capture:
    """One venue: instruments sharded over connections into one sink."""

    def __init__(
        self,
        connector: VenueConnector[Any],
        sink: Sink,
        *,
        env: str | None = None,
        writer: str | None = None,
        stall_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        with_metrics: bool = True,
        log_every: float = 60.0,
    ) -> None:
        self.connector = connector
        self.sink = sink
        self.env = env or os.environ.get("SSMD_ENV") or "prod"
        self.writer = writer or default_writer()
        self.stall_timeout = stall_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        #: seconds between the periodic INFO summary lines
        self.log_every = log_every
        # unique per process run, so bus message ids ({conn}:{n}) never repeat
        short = Venue.parse(connector.venue).short
        self.conn_prefix = _safe(f"{short}-{self.writer}-{int(time.time()) % 0x1000000:06x}")
        self.plan = ShardPlan(connector.config.max_per_connection)
        self.connections: list[Connection] = []
        self.stopping = False
        self.error: BaseException | None = None
        self._done = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._metrics = metrics() if with_metrics else None
        self.started_at = time.monotonic()
        self.flow = FlowControl(self, sink)
        self._pub_flow: tuple[int, float] = (0, 0.0)

    # -- the desired set -------------------------------------------------

    def stats_for(self, conn: Connection) -> ConnectionStats:
        return ConnectionStats(self.connector.venue, conn.conn_id, self._metrics)

    def _connection(self, index: int) -> Connection:
        while len(self.connections) <= index:
            c = Connection(self, len(self.connections))
            self.connections.append(c)
            c.start()
        return self.connections[index]

    def add(self, instruments: Iterable[str]) -> int:
        """Subscribe ``instruments`` (already desired ones are ignored); returns how many are new."""
        placed = self.plan.place(instruments)
        for index, insts in sorted(placed.items()):
            self._connection(index).add(insts)
        return sum(len(v) for v in placed.values())

    def remove(self, instruments: Iterable[str]) -> int:
        """Unsubscribe ``instruments``; returns how many were desired."""
        removed = self.plan.unplace(instruments)
        for index, insts in removed.items():
            self.connections[index].remove(insts)
        return sum(len(v) for v in removed.values())

    def set_desired(self, instruments: Iterable[str]) -> tuple[int, int]:
        """Make the desired set exactly ``instruments``; returns (added, removed)."""
        want = dict.fromkeys(instruments)
        gone = [i for i in self.plan.owner if i not in want]
        removed = self.remove(gone)
        added = self.add(want)
        return added, removed

    @property
    def desired(self) -> set[str]:
        return set(self.plan.owner)

    # -- running ---------------------------------------------------------

    async def start(self, instruments: Iterable[str] = ()) -> None:
        """Open the connections and subscribe ``instruments``."""
        self.started_at = time.monotonic()
        self.add(instruments)
        if not self.connections and self.connector.needs_connection(0):
            self._connection(0)
        if not self.connections:
            raise ConnectorError(f"{self.connector.venue}: no instruments to subscribe")
        self._ticker = asyncio.create_task(self._tick(), name=f"ssmd-{self.connector.venue}-tick")

    async def wait(self, duration: float | None = None) -> None:
        """Until :meth:`stop`, a failure, or ``duration`` seconds; re-raises a failure."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._done.wait(), duration)
        if self.error is not None:
            raise self.error

    async def stop(self) -> None:
        """Close every connection, process what is buffered, flush the sink."""
        if self.stopping and self._ticker is None:
            return
        self.stopping = True
        self._done.set()
        await self.flow.close()
        for c in self.connections:
            c.close("shutdown", _normal_close())
            c.wake()
        tasks = [c.task for c in self.connections if c.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for c in self.connections:
            c.drain()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ticker
            self._ticker = None
        self._publish()

    def fail(self, exc: BaseException) -> None:
        """A fatal error: stop everything and re-raise from :meth:`wait` / ``run_capture``.

        An :class:`~ssmd.errors.SsmdError` (the sink broke, the venue refused
        us) is logged as one line. Any other exception is a bug: it is kept as
        it is, so it leaves the process with its traceback, once.
        """
        if self.error is None:
            if isinstance(exc, SsmdError):
                log.error("%s: %s", self.connector.venue, exc)
            else:
                log.error(
                    "%s: stopping on a bug: %s: %s", self.connector.venue, type(exc).__name__, exc
                )
            self.error = exc
        self._done.set()

    def connection_failed(self, conn: Connection, exc: BaseException) -> None:
        """A connection gave up (non-retryable): the capture stops with its error."""
        self.fail(exc)

    async def _tick(self) -> None:
        step = max(0.05, min(1.0, self.stall_timeout / 4))
        last_pub = 0.0
        last_log = time.monotonic()
        logged: dict[str, int] = {}
        judge_after = 0.0
        while True:
            before = time.monotonic()
            await asyncio.sleep(step)
            now = time.monotonic()
            if now - before > step + max(1.0, self.stall_timeout / 2):
                # this process was starved (the loop did not run): what looks like
                # silence may be frames still in the socket; read them first
                log.warning("%s: event loop stalled %.1fs", self.connector.venue, now - before)
                judge_after = now + 2 * step
            if self.flow.paused:
                judge_after = max(judge_after, now + 2 * step)  # read what queued up first
            for c in self.connections:
                if now >= judge_after:
                    c.check_stalls(now)
                else:
                    c.stats.settle(c)
            if now - last_pub >= 1.0:
                last_pub = now
                self._publish()
            if now - last_log >= self.log_every:
                logged = self._log_summary(now - last_log, logged)
                last_log = now

    def _log_summary(self, secs: float, before: dict[str, int]) -> dict[str, int]:
        """One INFO line of counts since the last one (the core counts, Python logs)."""
        t = self.totals()
        d = {k: v - before.get(k, 0) for k, v in t.items()}
        up = sum(1 for c in self.connections if c.live)
        log.info(
            "%s: %.0f msg/s, %d connections up of %d, %d instruments; last %.0fs: "
            "malformed=%d gaps=%d resyncs=%d reconnects=%d stalls=%d",
            self.connector.venue,
            d.get("data", 0) / secs if secs else 0.0,
            up,
            len(self.connections),
            len(self.plan),
            secs,
            d.get("malformed", 0),
            d.get("gaps", 0),
            d.get("resyncs", 0),
            d.get("reconnects", 0),
            d.get("stalls", 0),
        )
        return t

    def _publish(self) -> None:
        q = getattr(self.sink, "queued_bytes", 0)
        for c in self.connections:
            c.stats.publish(c, q)
        m = self._metrics
        if m is not None:
            f = self.flow
            v = self.connector.venue
            d = f.pauses - self._pub_flow[0]
            if d:
                m.pauses.labels(v).inc(d)
            ds = f.paused_seconds - self._pub_flow[1]
            if ds > 0:
                m.paused.labels(v).inc(ds)
            self._pub_flow = (f.pauses, f.paused_seconds)

    # -- summaries -------------------------------------------------------

    def totals(self) -> dict[str, int]:
        """Counts over every connection (processor counters plus connection events)."""
        out: dict[str, int] = {}
        for c in self.connections:
            for k, v in c.processor.counters().items():
                out[k] = out.get(k, 0) + v
            s = c.stats
            for k, v in (
                ("reconnects", s.reconnects),
                ("disconnects", s.disconnects),
                ("stalls", sum(s.stalls.values())),
                ("venue_errors", s.venue_errors),
                ("status_lines", s.status_lines),
            ):
                out[k] = out.get(k, 0) + v
        out["read_pauses"] = self.flow.pauses
        out["read_paused_ms"] = int(self.flow.paused_seconds * 1000)
        return out

    def kinds(self) -> dict[str, int]:
        """Archived messages per kind over every connection."""
        out: dict[str, int] = {}
        for c in self.connections:
            c.stats.settle(c)
            for k, (n, _b) in c.stats.kinds.items():
                out[k] = out.get(k, 0) + n
        return out


async def close_sink(sink: Sink) -> None:
    """Flush and close ``sink`` (awaiting the bus sink's confirmations)."""
    aclose = getattr(sink, "aclose", None)
    if aclose is not None:
        await aclose()
    else:
        sink.close()


def _normal_close() -> Any:
    from picows import WSCloseCode

    return WSCloseCode.OK


async def run_capture(
    connector: VenueConnector[Any],
    query: InstrumentQuery,
    sink: Sink,
    *,
    duration: float | None = None,
    stop: StopSignal | None = None,
    signals: bool = False,
    started: Callable[[Capture], None] | None = None,
    **capture_args: Any,
) -> Capture:
    """Resolve ``query``, capture until stopped (signal, ``stop``, ``duration``, failure).

    On the way out every connection is closed, buffered frames are processed
    and the sink is flushed and closed, also when the capture failed; the
    failure is then re-raised.
    """
    try:
        async with httpx.AsyncClient(timeout=20.0, follow_redirects=True) as client:
            resolution = await connector.resolve(query, client)
    except BaseException:
        await close_sink(sink)
        raise
    log.info(
        "%s: %d instrument(s) on channels %s",
        connector.venue,
        len(resolution.instruments),
        ",".join(connector.channels),
    )
    capture = Capture(connector, sink, **capture_args)
    stop = stop or StopSignal()
    remove = install_stop_signals(stop) if signals else None
    try:
        await capture.start(resolution.instruments)
        if started is not None:
            started(capture)
        waiters = {
            asyncio.create_task(stop.wait()),
            asyncio.create_task(capture._done.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
    finally:
        try:
            await capture.stop()
        finally:
            if remove is not None:
                remove()
            await close_sink(sink)
    if capture.error is not None:
        raise capture.error
    return capture
