"""``ssmd signal run``: one signal over the market-data streams, fires onto ``SIGNALS``.

Per venue, a durable pull consumer (``--consumer``, default ``signal-{id}``)
reads the venue's primary stream, filtered on the subject kinds the signal's
builders read. Each fetched batch has its stream sequences stamped into its
lines (as the archiver does, so the engine sees the lines a backtest of the
archive sees), goes through the engine, and then, in this order:

1. every fire is published to ``signals.{signal}.{instrument token}`` with
   ``Nats-Msg-Id = {signal}:{venue}:{conn}:{n}`` (a batch's fires together)
   and its acknowledgement awaited (retried until it is stored: the id makes
   a repeat a no-op);
2. every edge that changed (an instrument whose evaluation turned true or
   false) is written to the ``ssmd_signals`` KV bucket;
3. the batch is acknowledged.

A restart (SIGKILL included) resumes each consumer at its acknowledgement
floor. The windows are rebuilt first by replaying the stream from the
message received one window (plus a minute) before that floor, without
evaluating; the edges come from the KV bucket. Lines after the floor are
processed again: a fire already published is published again with the same
id and dropped by the stream's duplicate window (10 minutes), an edge
already written is rewritten; nothing the killed run had not published is
lost. A runner starting for the first time reads from the end of the streams
and warms its windows (and its edges, without firing) on the last window of
each stream.

:meth:`SignalRunner.run_in_process` runs the same consume loop on the
in-process bus of captures in this process (``ssmd demo``): fires to its
``SIGNALS`` stream, edges to its ``ssmd_signals`` bucket in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ssmd.core import stamp_seq
from ssmd.errors import Failure
from ssmd.runtime.backoff import Backoff, retry_until_stopped
from ssmd.signals.engine import Fire, SignalRun

__all__ = ["KV_BUCKET", "RunnerStats", "SignalRunner", "kv_key", "watch_fires"]

log = logging.getLogger("ssmd.signals")

#: edge state of every runner, one key per consumer, venue and instrument
KV_BUCKET = "ssmd_signals"
#: on the in-process bus, a runner waits this long after a batch that was not full
IN_PROCESS_LINGER = 0.02
#: extra history replayed before a window, for lines received out of order
WARM_MARGIN_S = 60.0


def kv_key(consumer: str, venue: str, instrument: str) -> str:
    """``{consumer}.{venue}.{hash of the instrument}`` (KV keys allow few characters)."""
    h = hashlib.blake2b(instrument.encode(), digest_size=12).hexdigest()
    return f"{consumer}.{venue}.{h}"


@dataclass
class RunnerStats:
    signal: str
    consumer: str
    messages: int = 0
    lines: int = 0
    fires: int = 0
    publish_retries: int = 0
    edges_written: int = 0
    warm_messages: int = 0
    warm_seconds: float = 0.0
    edges_restored: int = 0
    #: messages delivered again after they were processed: skipped
    redelivered: int = 0
    last_seq: dict[str, int] = field(default_factory=dict)
    #: receive-to-publish latency of the fires (seconds): last 10 000
    latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "latencies"}
        lat = sorted(self.latencies)
        if lat:
            d["latency_p50_ms"] = round(lat[len(lat) // 2] * 1000, 3)
            d["latency_p99_ms"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 3)
        return d


def _rx_of(payload: bytes) -> int | None:
    if not payload.startswith(b'{"rx":'):
        return None
    end = payload.find(b",", 6)
    try:
        return int(payload[6:end])
    except ValueError:
        return None


class SignalRunner:
    """Runs one signal over the venue streams until stopped."""

    def __init__(
        self,
        run: SignalRun,
        nats_url: str | None = None,
        *,
        env: str = "prod",
        venues: Sequence[str],
        consumer: str | None = None,
        batch: int = 2000,
        warm: bool = True,
    ) -> None:
        self.run_ = run
        self.nats_url = nats_url
        self.env = env
        self.venues = list(venues)
        self.consumer = consumer or f"signal-{run.signal.id}"
        self.batch = batch
        self.warm = warm
        self.stats = RunnerStats(run.signal.id, self.consumer)
        self.started = asyncio.Event()
        self._nc: Any = None
        self._js: Any = None
        self._kv: Any = None
        #: where fires and edges go: JetStream and its KV bucket (:meth:`run`), or
        #: the in-process bus and its bucket (:meth:`run_in_process`)
        self._send: Callable[[str, bytes, str], Awaitable[object]] = self._js_send
        self._put_edge: Callable[[str, bytes], Awaitable[object]] = self._kv_put
        self._lock = asyncio.Lock()
        #: seconds to wait after a batch that was not full (the in-process bus wakes a
        #: consumer on every message: this gathers them into batches)
        self.linger = 0.0
        #: the consumer of each venue, once running
        self.sources: dict[str, Any] = {}
        self._busy = 0  # batches between a fetch that returned messages and their ack

    # -- set-up ---------------------------------------------------------------------

    def _filters(self, venue: str) -> list[str]:
        from ssmd.types import Venue

        v = Venue.parse(venue)
        mid = ".*" if v is Venue.KALSHI else ""
        return [f"{self.env}.{v.value}{mid}.json.{k}.>" for k in self.run_.subject_kinds()]

    def _window_s(self) -> float:
        return max((w for _, _, w, _ in self.run_.signal.engine_builders()), default=0.0)

    async def _restore_edges(self) -> int:
        """Edges of this consumer from the bucket; the number of high ones."""
        from nats.js.errors import NoKeysError

        values = []
        try:
            watcher = await self._kv.watch(f"{self.consumer}.>", ignore_deletes=True)
        except NoKeysError:
            return 0
        try:
            while True:
                entry = await watcher.updates(timeout=5.0)
                if entry is None:
                    break
                values.append(entry.value)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()
        return self._restore_from(values)

    async def _resume_point(self, stream: str) -> tuple[int | None, bool]:
        """``(the last sequence processed, whether the consumer existed)``."""
        from nats.js.errors import NotFoundError

        try:
            info = await self._js.consumer_info(stream, self.consumer)
        except NotFoundError:
            state = (await self._js.stream_info(stream)).state
            return int(state.last_seq), False
        floor = int(info.ack_floor.stream_seq) if info.ack_floor else 0
        return floor, True

    async def _rx_at(self, stream: str, seq: int) -> int | None:
        from nats.js.errors import NotFoundError

        try:
            msg = await self._js.get_msg(stream, seq)
        except NotFoundError:
            return None
        return _rx_of(bytes(msg.data or b""))

    async def _first_seq_after(self, stream: str, first: int, last: int, rx: int) -> int:
        """The smallest sequence in ``first..=last`` whose first line is received at
        ``rx`` or later (binary search by receive time; the stream is nearly in rx order)."""
        lo, hi = first, last
        while lo < hi:
            mid = (lo + hi) // 2
            r = await self._rx_at(stream, mid)
            probe = mid
            while r is None and probe < hi:  # a deleted or non-envelope message
                probe += 1
                r = await self._rx_at(stream, probe)
            if r is None or r >= rx:
                hi = mid
            else:
                lo = probe + 1
        return lo

    async def _warm_up(self, venue: str, stream: str, upto: int, edges: bool) -> None:
        """Replay ``stream`` up to ``upto`` through the engine without firing."""
        from ssmd.bus.nats import JetStreamSource

        window = self._window_s()
        if not self.warm or upto <= 0 or window <= 0:
            return
        state = (await self._js.stream_info(stream)).state
        first = int(state.first_seq)
        if upto < first:
            return
        end_rx = await self._rx_at(stream, upto)
        if end_rx is None:
            return
        since = end_rx - int((window + WARM_MARGIN_S) * 1e9)
        start = await self._first_seq_after(stream, first, upto, since)
        name = f"{self.consumer}-warm"
        src = JetStreamSource(
            self._nc, stream, name, batch=self.batch, filter_subjects=self._filters(venue)
        )
        await src.start(start - 1)
        t0 = time.monotonic()
        try:
            done = False
            while not done:
                msgs = await src.fetch(self.batch, 2.0)
                if not msgs:
                    pending = await src.pending()
                    if not pending:
                        break
                    continue
                keep = [(s, d) for s, d in msgs if s <= upto]
                done = len(keep) < len(msgs) or msgs[-1][0] >= upto
                if keep:
                    data, _, _ = stamp_seq(
                        [s for s, _ in keep], [d for _, d in keep], self._bad(venue), self.consumer
                    )
                    self.run_.process(data, evaluate=edges, fire=False)
                    self.stats.warm_messages += len(keep)
        finally:
            await src.close()
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(stream, name)
        self.stats.warm_seconds += time.monotonic() - t0

    def _bad(self, venue: str) -> str:
        return f"{self.env}.{venue}.json.malformed.{self.consumer}"

    # -- running ----------------------------------------------------------------------

    async def _js_send(self, subject: str, body: bytes, msg_id: str) -> object:
        return await self._js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})

    async def _kv_put(self, key: str, value: bytes) -> object:
        return await self._kv.put(key, value)

    async def _publish(self, fires: list[Fire], stop: asyncio.Event) -> bool:
        """Publish every fire, each confirmed; False if stopped first.

        A batch's fires go out together (in order on the connection) and their
        acknowledgements are awaited together; one that failed is retried alone
        with backoff until it is stored (its id makes a repeat a no-op).
        """
        if not fires:
            return True
        results = await asyncio.gather(
            *(self._send(f.subject, f.body(), f.msg_id) for f in fires),
            return_exceptions=True,
        )
        for f, r in zip(fires, results, strict=True):
            if isinstance(r, BaseException):
                if not isinstance(r, Exception):
                    raise r
                if not await self._publish_one(f, r, stop):
                    return False
            self.stats.fires += 1
            lat = time.time() - f.rx / 1e9
            if len(self.stats.latencies) >= 10_000:
                self.stats.latencies.pop(0)
            self.stats.latencies.append(lat)
        return True

    async def _publish_one(self, f: Fire, error: Exception, stop: asyncio.Event) -> bool:
        def failed(failure: Failure) -> None:
            self.stats.publish_retries += 1
            log.warning(
                "signal %s: publishing %s failed (%s); retrying",
                self.consumer,
                f.msg_id,
                failure.reason,
            )

        return await retry_until_stopped(
            lambda: self._send(f.subject, f.body(), f.msg_id),
            stop,
            Backoff(base=0.1, cap=5.0),
            error=error,
            on_retry=failed,
        )

    async def _write_edges(self, edges: list[tuple[str, str, bool]], stop: asyncio.Event) -> bool:
        def failed(failure: Failure) -> None:
            log.warning(
                "signal %s: writing an edge failed (%s); retrying", self.consumer, failure.reason
            )

        for venue, inst, high in edges:
            value = orjson.dumps({"venue": venue, "instrument": inst, "high": high})
            key = kv_key(self.consumer, venue, inst)
            if not await retry_until_stopped(
                lambda: self._put_edge(key, value),  # noqa: B023 (awaited before the next turn)
                stop,
                Backoff(base=0.1, cap=5.0),
                on_retry=failed,
            ):
                return False
            self.stats.edges_written += 1
        return True

    async def _venue(self, venue: str, source: Any, stop: asyncio.Event) -> None:
        """The consume loop of one venue's stream, on either bus: fetch, process,
        publish the fires, write the edges, acknowledge; until ``stop`` is set."""
        bad = self._bad(venue)
        while not stop.is_set():
            msgs = await source.fetch(self.batch, 0.25)
            done = self.stats.last_seq.get(venue)
            if msgs and done is not None and msgs[0][0] <= done:
                # delivered again (an acknowledgement that did not arrive in time):
                # already processed, so not added to the windows twice
                fresh = [m for m in msgs if m[0] > done]
                self.stats.redelivered += len(msgs) - len(fresh)
                if not fresh:
                    await source.ack_upto(msgs[-1][0])
                    continue
                msgs = fresh
            if not msgs:
                continue
            self._busy += 1
            try:
                data, nlines, _ = stamp_seq(
                    [s for s, _ in msgs], [d for _, d in msgs], bad, self.consumer
                )
                async with self._lock:  # one batch at a time through the engine and its edges
                    fires = self.run_.process(data)
                    edges = self.run_.engine.take_transitions()
                    if not await self._publish(fires, stop):
                        return
                    if not await self._write_edges(edges, stop):
                        return
                await source.ack_upto(msgs[-1][0])
            finally:
                self._busy -= 1
            self.stats.messages += len(msgs)
            self.stats.lines += nlines
            self.stats.last_seq[venue] = msgs[-1][0]
            if self.linger and len(msgs) < self.batch:
                await asyncio.sleep(self.linger)  # let a batch gather

    async def caught_up(self) -> bool:
        """Whether every consumer has processed all its stream holds so far."""
        if not self.started.is_set() or self._busy:
            return False
        for src in self.sources.values():
            if await src.pending():
                return False
        return not self._busy

    async def run(self, stop: asyncio.Event) -> RunnerStats:
        from ssmd.bus.nats import JetStreamSource, connect, ensure_streams, key_value
        from ssmd.bus.streams import spec_for_venue, stream_specs

        if not self.nats_url:
            raise ValueError(
                "SignalRunner.run needs a NATS URL (run_in_process: the in-process bus)"
            )
        nc = await connect(self.nats_url, name=f"ssmd-signal-{self.run_.signal.id}")
        sources: list[Any] = []
        try:
            self._nc = nc
            self._js = nc.jetstream()
            specs = stream_specs(self.env)
            mine = [spec_for_venue(v, specs) for v in self.venues]
            await ensure_streams(self._js, [*mine, *(s for s in specs if s.name == "SIGNALS")])
            self._kv = await key_value(
                self._js, KV_BUCKET, "ssmd signal runners: per-instrument edge state"
            )
            restart = False
            points = []
            for venue, spec in zip(self.venues, mine, strict=True):
                after, existed = await self._resume_point(spec.name)
                restart = restart or existed
                points.append((venue, spec.name, after, existed))
            for venue, stream, after, existed in points:
                # a consumer that existed takes its edges from the bucket; a new one
                # starts from the edges its warm-up found (written to the bucket)
                await self._warm_up(venue, stream, after or 0, edges=not existed)
            await self._write_edges(self.run_.engine.take_transitions(), stop)
            if restart:
                self.stats.edges_restored = await self._restore_edges()
            for venue, stream, after, _ in points:
                src = JetStreamSource(
                    nc,
                    stream,
                    self.consumer,
                    batch=self.batch,
                    filter_subjects=self._filters(venue),
                )
                await src.start(after)
                sources.append((venue, src))
                self.sources[venue] = src
            self.started.set()
            log.info(
                "signal %s: running on %s (consumer %s, %d messages warmed up in %.1f s, %d edges restored)",
                self.run_.signal.id,
                ", ".join(s for _, s, _, _ in points),
                self.consumer,
                self.stats.warm_messages,
                self.stats.warm_seconds,
                self.stats.edges_restored,
            )
            await asyncio.gather(*(self._venue(v, s, stop) for v, s in sources))
        finally:
            for _, s in sources:
                with contextlib.suppress(Exception):
                    await s.close()
            await nc.close()
        return self.stats

    async def run_in_process(self, bus: Any, stop: asyncio.Event) -> RunnerStats:
        """Run on ``bus``, a :class:`~ssmd.bus.memory.MemoryBus` that captures in this
        process publish to (``ssmd demo``), with the same consume loop as :meth:`run`.

        Fires go to the bus's ``SIGNALS`` stream (deduplicated by their
        ``Nats-Msg-Id`` as on JetStream), edges to the bus's ``ssmd_signals``
        bucket (:meth:`MemoryBus.kv`). A consumer new to the bus reads each
        venue's stream from its start; one the bus knows (a runner started
        again in the same process) resumes at its acknowledgement floor, its
        windows rebuilt from the stream without evaluating and its edges taken
        from the bucket, as :meth:`run` does on JetStream.
        """
        from ssmd.bus.streams import venue_stream
        from ssmd.errors import ConfigError

        if "SIGNALS" not in bus.streams:
            raise ConfigError("the in-process bus has no SIGNALS stream to publish fires to")
        edges = bus.kv(KV_BUCKET)

        async def send(subject: str, body: bytes, msg_id: str) -> object:
            return bus.publish(subject, body, msg_id)

        async def put(key: str, value: bytes) -> object:
            edges[key] = value
            return None

        self._send, self._put_edge = send, put
        self.linger = IN_PROCESS_LINGER
        points = []
        for venue in self.venues:
            stream = venue_stream(venue, self.env)
            floor = bus.stream(stream).acked.get(self.consumer)
            if floor:
                await self._warm_in_process(bus, venue, stream, floor)
            points.append((venue, stream, floor))
        if any(floor is not None for _, _, floor in points):
            mine = f"{self.consumer}."
            self.stats.edges_restored = self._restore_from(
                v for k, v in edges.items() if k.startswith(mine)
            )
        sources = []
        for venue, stream, floor in points:
            src = bus.source(stream, self.consumer, filter_subjects=self._filters(venue))
            await src.start(floor)
            sources.append((venue, src))
            self.sources[venue] = src
        self.started.set()
        try:
            await asyncio.gather(*(self._venue(v, s, stop) for v, s in sources))
        finally:
            for _, s in sources:
                await s.close()
        return self.stats

    async def _warm_in_process(self, bus: Any, venue: str, stream: str, upto: int) -> None:
        """Rebuild the windows from ``stream`` up to ``upto``, without evaluating."""
        if not self.warm:
            return
        name = f"{self.consumer}-warm"
        src = bus.source(stream, name, filter_subjects=self._filters(venue))
        await src.start()
        t0 = time.monotonic()
        try:
            while msgs := [(s, d) for s, d in await src.fetch(self.batch, 0) if s <= upto]:
                data, _, _ = stamp_seq(
                    [s for s, _ in msgs], [d for _, d in msgs], self._bad(venue), self.consumer
                )
                self.run_.process(data, evaluate=False, fire=False)
                self.stats.warm_messages += len(msgs)
        finally:
            st = bus.stream(stream)
            st.delivered.pop(name, None)
            st.acked.pop(name, None)
        self.stats.warm_seconds += time.monotonic() - t0

    def _restore_from(self, values: Iterable[bytes]) -> int:
        """Set the engine's edges from stored values; the number of high ones."""
        n = 0
        for value in values:
            try:
                d = orjson.loads(value)
                self.run_.engine.set_high(d["venue"], d["instrument"], bool(d["high"]))
                n += bool(d["high"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("signal %s: unreadable edge %r", self.consumer, bytes(value[:200]))
        return n


async def watch_fires(
    url: str,
    subject: str,
    show: Callable[[bytes], None],
    *,
    since: float | None = None,
    count: int | None = None,
    duration: float | None = None,
) -> int:
    """Print the fires stored on ``subject`` from now (or ``since`` seconds back), each
    once (an ordered consumer of ``SIGNALS``: a fire published again is not seen twice);
    the number printed."""
    from nats.js.api import DeliverPolicy

    from ssmd.bus.nats import connect, ensure_streams
    from ssmd.bus.streams import stream_specs
    from ssmd.runtime.shutdown import StopSignal, install_stop_signals

    nc = await connect(url, name="ssmd-signal-subscribe")
    stop = StopSignal()
    remove = install_stop_signals(stop)
    seen = 0
    try:
        js = nc.jetstream()
        await ensure_streams(js, [s for s in stream_specs() if s.name == "SIGNALS"])
        kw: dict[str, Any] = {"deliver_policy": DeliverPolicy.NEW}
        if since is not None:
            start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=since)
            kw = {
                "deliver_policy": DeliverPolicy.BY_START_TIME,
                "opt_start_time": start.isoformat(),
            }
        done = asyncio.Event()

        async def on_msg(msg: Any) -> None:
            nonlocal seen
            if done.is_set():
                return
            show(bytes(msg.data))
            seen += 1
            if count is not None and seen >= count:
                done.set()

        from nats.js.api import ConsumerConfig

        sub = await js.subscribe(
            subject,
            cb=on_msg,
            ordered_consumer=True,
            stream="SIGNALS",
            config=ConsumerConfig(**kw),
        )
        waits = {asyncio.create_task(done.wait()), asyncio.create_task(stop.wait())}
        _, pending = await asyncio.wait(
            waits, timeout=duration, return_when=asyncio.FIRST_COMPLETED
        )
        for t in pending:
            t.cancel()
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    finally:
        remove()
        await nc.close()
    return seen
