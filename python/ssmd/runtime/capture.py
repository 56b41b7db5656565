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
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import httpx

from ssmd.errors import ConnectorError, SsmdError
from ssmd.runtime.backoff import Backoff
from ssmd.runtime.desired import ShardPlan
from ssmd.runtime.flow import FlowControl
from ssmd.runtime.metrics import metrics
from ssmd.runtime.shutdown import StopSignal, install_stop_signals
from ssmd.runtime.sink import Sink
from ssmd.runtime.supervisor import Connection
from ssmd.runtime.venue import Connector, InstrumentQuery
from ssmd.types import Venue

if TYPE_CHECKING:
    from ssmd.core import Batch

__all__ = ["Capture", "ConnectionFactory", "default_writer", "run_capture", "start_connection"]

log = logging.getLogger("ssmd.connect")


def default_writer() -> str:
    """The writer name: the host name (without domain)."""
    return (socket.gethostname() or "ssmd").split(".", 1)[0] or "ssmd"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "ssmd"


def start_connection(capture: Capture, index: int) -> Connection:
    """The default :data:`ConnectionFactory`: build shard ``index``'s connection and start it."""
    conn = capture.build_connection(index)
    conn.start()
    return conn


#: makes the connection of shard ``index`` (tests inject one that never dials)
ConnectionFactory = Callable[["Capture", int], Connection]


class Capture:
    """One venue: instruments sharded over connections into one sink.

    It is the :class:`~ssmd.runtime.supervisor.CaptureLink` of its connections
    (``stopping``, ``reading_paused``, ``deliver``, ``write_status``, ``fail``)
    and the owner its :class:`~ssmd.runtime.flow.FlowControl` pauses
    (``venue``, ``stopping``, ``readers``).
    """

    def __init__(
        self,
        connector: Connector,
        sink: Sink,
        *,
        env: str | None = None,
        writer: str | None = None,
        stall_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        with_metrics: bool = True,
        log_every: float = 60.0,
        connection_factory: ConnectionFactory = start_connection,
    ) -> None:
        self.connector = connector
        self.venue = connector.venue
        self.sink = sink
        self.env = env or "prod"
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
        latency = getattr(sink, "latency", None)
        if self._metrics is not None and latency is not None:
            stage = getattr(sink, "latency_stage", "acked")
            self._metrics.pipeline.track(connector.venue, stage, latency)
        self.started_at = time.monotonic()
        self.flow = FlowControl(self, sink)
        self._pub_flow: tuple[int, float] = (0, 0.0)
        self._new_connection = connection_factory

    # -- what the connections and the flow control ask of the capture ----

    @property
    def reading_paused(self) -> bool:
        return self.flow.paused

    @property
    def readers(self) -> list[Connection]:
        return self.connections

    def deliver(self, batch: Batch) -> list[tuple[str, int, int]]:
        """One core batch into the sink (the bus: one message per subject), then flow control."""
        sink = self.sink
        if sink.wants_groups:
            groups = batch.groups()
            sink.write_batch(batch, groups)
            subjects = [(s, n, len(b)) for s, b, n, _ in groups]
        else:
            sink.write_batch(batch, ())
            subjects = batch.subjects()
        self.flow.check()
        return subjects

    def write_status(self, subject: str, line: bytes, msg_id: str) -> None:
        self.sink.write_status(subject, line, msg_id)

    # -- the desired set -------------------------------------------------

    def build_connection(self, index: int) -> Connection:
        """Shard ``index``'s connection, not started."""
        return Connection(
            self,
            self.connector,
            index,
            conn_prefix=self.conn_prefix,
            env=self.env,
            stall_timeout=self.stall_timeout,
            backoff=Backoff(base=self.backoff_base, cap=self.backoff_cap),
            metrics=self._metrics,
        )

    def _connection(self, index: int) -> Connection:
        while len(self.connections) <= index:
            c = self._new_connection(self, len(self.connections))
            self.connections.append(c)
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
                    c.settle()
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
            c.publish(q)
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
            c.settle()
            for k, (n, _b) in c.stats.kinds.items():
                out[k] = out.get(k, 0) + n
        return out


def _unconfirmed(sink: Sink) -> str | None:
    """What a hard stop would lose from ``sink`` now, in words (``None``: nothing)."""
    lines = getattr(sink, "unconfirmed_lines", None)
    if lines is not None:
        return f"{lines:,} line(s) not confirmed by the bus" if lines else None
    queued = sink.queued_bytes
    return f"{queued:,} bytes not yet durable in the archive" if queued else None


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
    connector: Connector,
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
    stop.report = lambda: _unconfirmed(sink)
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
        stop.set("done")  # from here a signal is a second one: it stops hard, saying what it drops
        try:
            await capture.stop()
        finally:
            try:
                await close_sink(sink)
            finally:
                if remove is not None:
                    remove()
    if capture.error is not None:
        raise capture.error
    return capture
