"""``ssmd cdc run``: the slot's changes onto JetStream, none lost, none twice.

Each round peeks the slot's changes (``pg_logical_slot_peek_changes``,
at most ``batch`` changes rounded up to a whole transaction) through a
cursor in fetches of ``fetch`` rows, so memory stays bounded however large a
transaction is (PostgreSQL itself spills the peek's result to disk past
``work_mem``). Every change is published as it streams past, through a
window of at most ``window`` unacknowledged messages. Only when JetStream
acknowledged every change of the round does the slot advance, to the end
of the last transaction seen; a crash before that makes the next round peek
the same changes again, and their ``Nats-Msg-Id`` (``{lsn}:{n}``) makes
JetStream store each once, as long as the restart comes within the stream's
duplicate window (15 minutes for ``SECMASTER_CDC``).

On a quiet database a heartbeat (a transactional logical message,
``pg_logical_emit_message``) is written every ``heartbeat`` seconds, so the
slot keeps advancing and holds no WAL back. A lost PostgreSQL or NATS
connection is retried with backoff; the slot resumes where it was confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ssmd.cdc.publish import Publisher
from ssmd.cdc.slot import SlotLost, advance, ensure_slot, raise_if_lost, slot_info
from ssmd.cdc.wal2json import Change, Decoder, format_lsn, plugin_options
from ssmd.errors import ConfigError, SinkError, SsmdError
from ssmd.secmaster.reconnect import connection_lost, first_line

__all__ = ["CdcService", "CdcStats", "publish_snapshot"]

log = logging.getLogger("ssmd.cdc")

#: prefix of ssmd's heartbeat messages in the WAL
HEARTBEAT_PREFIX = "ssmd_cdc"

#: seconds after an outage began during which a slot "in use" is the lost connection's
#: backend still exiting (retried), not another ``ssmd cdc run`` (an error)
IN_USE_GRACE = 30.0


@dataclass
class CdcStats:
    slot: str
    changes: int = 0  # changes published (acknowledged)
    transactions: int = 0
    rounds: int = 0
    heartbeats: int = 0
    snapshot_rows: int = 0
    duplicates: int = 0  # acknowledged as duplicates: published before a restart
    resent: int = 0
    truncated: int = 0
    reconnects: int = 0  # PostgreSQL outages recovered from (each counted once)
    outage_seconds: float = 0.0  # time spent reconnecting, summed
    confirmed_lsn: str | None = None
    last_publish: float | None = None  # unix time

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Metrics:
    _one: _Metrics | None = None

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.changes = Counter("ssmd_cdc_changes", "Row changes published", ["table", "op"])
        self.lag = Gauge("ssmd_cdc_slot_lag_bytes", "WAL the CDC slot holds back")
        self.latency = Histogram(
            "ssmd_cdc_commit_to_publish_seconds",
            "Commit time to JetStream acknowledgement",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.last_publish = Gauge("ssmd_cdc_last_publish_time", "Unix time of the last publish")
        self.outages = Counter(
            "ssmd_cdc_postgres_outages", "Lost PostgreSQL connections (one per outage)"
        )
        self.connected = Gauge(
            "ssmd_cdc_postgres_connected", "1 while the service holds a PostgreSQL connection"
        )

    @classmethod
    def get(cls) -> _Metrics:
        if cls._one is None:
            cls._one = cls()
        return cls._one


class CdcService:
    """Streams one slot's changes of ``tables`` to JetStream until stopped."""

    def __init__(
        self,
        dsn: str,
        nats_url: str,
        *,
        tables: Sequence[str],
        slot: str = "ssmd_cdc",
        batch: int = 10_000,
        fetch: int = 500,
        window: int = 1024,
        poll: float = 0.02,
        heartbeat: float = 10.0,
        resync: bool = False,
        metrics: bool = True,
    ) -> None:
        if not tables:
            raise ConfigError("no tables to capture (CDC_TABLES)")
        self.dsn = dsn
        self.nats_url = nats_url
        self.tables = tuple(tables)
        self.slot = slot
        self.batch = batch
        self.fetch = fetch
        self.window = window
        self.poll = poll
        self.heartbeat = heartbeat
        self.resync = resync
        self.options = plugin_options(self.tables)
        self.stats = CdcStats(slot)
        self.m = _Metrics.get() if metrics else None
        self.started = asyncio.Event()
        self._last_change = time.monotonic()

    async def run(self, stop: asyncio.Event) -> CdcStats:
        """Capture until ``stop`` is set; reconnect to PostgreSQL and NATS on failure."""
        from ssmd.bus.nats import NatsTransport, connect, ensure_streams
        from ssmd.bus.streams import stream_specs

        holder: dict[str, Publisher] = {}

        def reconnected() -> None:
            pub = holder.get("pub")
            if pub is not None:
                pub.reconnected()

        nc = await connect(self.nats_url, name="ssmd-cdc", on_reconnect=reconnected)
        try:
            specs = [s for s in stream_specs() if s.name == "SECMASTER_CDC"]
            await ensure_streams(nc.jetstream(), specs)
            pub = Publisher(NatsTransport(nc), window=self.window)
            holder["pub"] = pub
            await pub.start()
            try:
                await self._serve(pub, stop)
            finally:
                await pub.close()
        finally:
            await nc.close()
        return self.stats

    async def _serve(self, pub: Publisher, stop: asyncio.Event) -> None:
        """Connect, check the slot, stream; after a lost connection, again from the slot.

        The first connection must succeed (a setup mistake is a one-line
        error). Later, PostgreSQL going away (a restart, a crash, the backend
        terminated) is an outage: logged once when it starts and once when it
        ends, counted (``reconnects``, ``ssmd_cdc_postgres_outages``), retried
        with :class:`~ssmd.runtime.backoff.Backoff`. Nothing is lost: the slot
        was advanced only past acknowledged transactions, so the next round
        peeks from there and JetStream drops the re-sent ids.
        """
        import asyncpg  # type: ignore[import-untyped]

        from ssmd.runtime.backoff import Backoff
        from ssmd.secmaster.db import connect as pg_connect

        lost = connection_lost()
        backoff = Backoff(base=0.1, cap=5.0)
        first = True
        down_since: float | None = None  # monotonic start of the current outage
        last_outage = -math.inf  # monotonic start of the last one
        while not stop.is_set():
            try:
                conn = await pg_connect(self.dsn)
            except SsmdError as exc:
                if first:
                    raise
                down_since = self._outage(down_since, exc)
                await _sleep(stop, backoff.next_delay())
                continue
            try:
                info, created = await ensure_slot(conn, self.slot, recreate=self.resync and first)
                at = format_lsn(info.confirmed_lsn or 0)
                if down_since is not None:
                    took = time.monotonic() - down_since
                    self.stats.outage_seconds += took
                    log.warning(
                        "cdc: PostgreSQL is back after %.1fs (%d attempt(s)); resuming from slot"
                        " %s at %s",
                        took,
                        backoff.attempt,
                        self.slot,
                        at,
                    )
                if created:
                    log.info("cdc: created replication slot %s at %s", self.slot, at)
                    if self.resync or not first:
                        await publish_snapshot(
                            conn, pub, self.tables, info.confirmed_lsn or 0, self.stats
                        )
                elif first:
                    log.info(
                        "cdc: slot %s confirmed at %s, %s bytes behind",
                        self.slot,
                        at,
                        f"{info.lag_bytes or 0:,}",
                    )
                first = False
                down_since = None
                backoff.reset()
                if self.m is not None:
                    self.m.connected.set(1)
                self.started.set()
                await self._stream(conn, pub, stop)
            except SlotLost:
                raise
            except asyncpg.ObjectInUseError:
                if time.monotonic() - last_outage > IN_USE_GRACE:
                    raise ConfigError(
                        f"replication slot {self.slot!r} is in use by another process"
                        " (another `ssmd cdc run`?)"
                    ) from None
                # the backend of the lost connection may still hold it for a moment
                await _sleep(stop, backoff.next_delay())
            except lost as exc:
                if first:
                    raise SinkError(
                        f"cdc: lost PostgreSQL while starting: {first_line(exc)}"
                    ) from None
                down_since = last_outage = self._outage(down_since, exc)
                await _sleep(stop, backoff.next_delay())
            except asyncpg.PostgresError as exc:
                raise SinkError(f"cdc: PostgreSQL error: {first_line(exc)}") from None
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5)

    def _outage(self, since: float | None, exc: BaseException) -> float:
        """Record a failed connection: the first of an outage is logged and counted."""
        if since is not None:
            log.debug("cdc: PostgreSQL still unreachable: %s", first_line(exc))
            return since
        self.stats.reconnects += 1
        if self.m is not None:
            self.m.outages.inc()
            self.m.connected.set(0)
        log.warning(
            "cdc: lost PostgreSQL (%s); reconnecting with backoff, then resuming from slot %s"
            " (confirmed at %s)",
            first_line(exc),
            self.slot,
            self.stats.confirmed_lsn or "its last position",
        )
        return time.monotonic()

    async def _stream(self, conn: Any, pub: Publisher, stop: asyncio.Event) -> None:
        import asyncpg

        next_lag = 0.0
        while not stop.is_set():
            try:
                n = await self._round(conn, pub)
            except asyncpg.ObjectNotInPrerequisiteStateError:
                # the slot was invalidated under us (peek or advance): say what to run
                await raise_if_lost(conn, self.slot)
                raise
            now = time.monotonic()
            if self.m is not None and now >= next_lag:
                next_lag = now + 1.0
                info = await slot_info(conn, self.slot)
                if info is not None and info.lag_bytes is not None:
                    self.m.lag.set(info.lag_bytes)
            if n:
                continue  # more may be waiting
            if now - self._last_change >= self.heartbeat:
                await conn.execute(
                    "SELECT pg_logical_emit_message(true, $1, $2)",
                    HEARTBEAT_PREFIX,
                    str(time.time_ns()),
                )
                self.stats.heartbeats += 1
                self._last_change = now
            await _sleep(stop, self.poll)

    async def _round(self, conn: Any, pub: Publisher) -> int:
        """One peek: publish its changes, wait for every acknowledgement, advance; returns rows."""
        dec = Decoder()
        rows = 0
        end = 0
        commits: list[tuple[int | None, int]] = []  # (commit ts, changes) for metrics
        async with conn.transaction(readonly=True):
            cur = conn.cursor(
                "SELECT data FROM pg_logical_slot_peek_changes($1, NULL, $2, VARIADIC $3::text[])",
                self.slot,
                self.batch,
                self.options,
                prefetch=self.fetch,
            )
            async for row in cur:
                rows += 1
                got = dec.feed(row["data"])
                if isinstance(got, Change):
                    await pub.publish(got)
                    if self.m is not None:
                        self.m.changes.labels(got.table, got.op).inc()
                elif got == "commit":
                    end = dec.end_lsn
                    commits.append((dec.ts, dec.n))
        if not rows:
            return 0
        await pub.wait_all()
        published = sum(n for _, n in commits)
        if end:
            await advance(conn, self.slot, end)
            self.stats.confirmed_lsn = format_lsn(end)
        st = self.stats
        st.rounds += 1
        st.changes += published
        st.transactions += sum(1 for _, n in commits if n)
        st.duplicates = pub.duplicates
        st.resent = pub.resent
        st.truncated = pub.truncated
        if published:
            st.last_publish = time.time()
            self._last_change = time.monotonic()
            if self.m is not None:
                now_ns = time.time_ns()
                self.m.last_publish.set(st.last_publish)
                for ts, n in commits:
                    if ts and n:
                        self.m.latency.observe(max(0.0, (now_ns - ts) / 1e9))
        return rows


async def publish_snapshot(
    conn: Any, pub: Publisher, tables: Sequence[str], lsn: int, stats: CdcStats
) -> None:
    """Every row of ``tables`` as ``op: snapshot`` changes at ``lsn`` (after a new slot)."""
    n = 0
    log.info("cdc: publishing a snapshot of %s at %s", ", ".join(tables), format_lsn(lsn))
    for table in tables:
        schema, _, name = table.rpartition(".")
        schema = schema or "public"
        pk = await conn.fetch(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = ($1 || '.' || $2)::regclass AND i.indisprimary",
            schema,
            name,
        )
        keys = [r["attname"] for r in pk]
        quoted = f'"{schema}"."{name}"'
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            async for row in conn.cursor(f"SELECT to_jsonb(t) AS j FROM {quoted} t", prefetch=500):
                import orjson

                new = orjson.loads(row["j"])
                await pub.publish(
                    Change(lsn, n, name, "snapshot", None, {k: new.get(k) for k in keys}, new)
                )
                n += 1
    await pub.wait_all()
    stats.snapshot_rows += n
    log.info("cdc: snapshot of %d row(s) published", n)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
