"""``ssmd cache run``: Redis follows the secmaster's ``instruments`` view.

At start (and after a Redis ``FLUSHDB``), the service attaches its durable
consumer at the end of ``SECMASTER_CDC``, then reads the whole view in one
repeatable-read transaction and swaps the rows into Redis atomically. The
loaded rows are stamped (0/0, 0), older than any change: every change the
consumer delivers afterwards is applied, including one that committed
before the load but was not yet visible to its snapshot (see :meth:`_load`).
A CDC ``--resync`` snapshot loads the view again, once per snapshot.
Then every batch of ``cdc.>`` changes is turned into the instruments they
touch (a market, the markets of an event or a series, a pair, a
condition), those rows are read again from the view, and each is written
with the (``lsn``, ``n``) of the change, unless the key already holds a
later one; a row the view no longer has is deleted the same way. The batch
is acknowledged after Redis has it, so a crash replays it, which changes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, cast

import orjson

from ssmd.cache.store import FIELDS, CacheStore, text
from ssmd.cdc.wal2json import parse_lsn
from ssmd.errors import SinkError
from ssmd.secmaster.query import SOURCE_TABLES
from ssmd.secmaster.reconnect import PgSession, StoppedInOutage

__all__ = ["CacheService", "CacheStats", "affected"]

log = logging.getLogger("ssmd.cache")

#: the venues whose instruments are rows of ``pairs`` (Kraken spot and Futures)
_PAIR_VENUES = tuple(v for v, (table, _) in SOURCE_TABLES.items() if table == "pairs")

_VIEW = "SELECT " + ", ".join(FIELDS) + " FROM instruments"


@dataclass
class CacheStats:
    bootstraps: int = 0
    rows_loaded: int = 0
    changes: int = 0  # CDC messages applied
    written: int = 0  # instruments written
    deleted: int = 0
    stale: int = 0  # skipped: the key already held a later change
    drift_checked: int = 0
    drift: int = 0  # sampled keys that differed from PostgreSQL
    reconnects: int = 0  # PostgreSQL outages ridden out
    last_apply: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Affected:
    """What a batch of changes touched, for re-reading the view."""

    kalshi: set[str]
    events: set[str]
    series: set[str]
    pairs: set[str]
    conditions: set[str]

    def __bool__(self) -> bool:
        return bool(self.kalshi or self.events or self.series or self.pairs or self.conditions)


def affected(bodies: Sequence[dict[str, Any]]) -> Affected:
    """The instruments (or their parents) a batch of CDC change bodies touches."""
    a = Affected(set(), set(), set(), set(), set())
    for b in bodies:
        key = b.get("key") or {}
        table = b.get("table")
        if table == "markets" and "ticker" in key:
            a.kalshi.add(str(key["ticker"]))
        elif table == "events" and "event_ticker" in key:
            a.events.add(str(key["event_ticker"]))
        elif table == "series" and "ticker" in key:
            a.series.add(str(key["ticker"]))
        elif table == "pairs" and "pair" in key:
            a.pairs.add(str(key["pair"]))
        elif table == "polymarket_conditions" and "condition_id" in key:
            a.conditions.add(str(key["condition_id"]))
    return a


class _Metrics:
    _one: _Metrics | None = None

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.applied = Counter("ssmd_cache_changes", "CDC changes applied to Redis")
        self.drift = Gauge("ssmd_cache_drift", "Sampled keys that differ from PostgreSQL")
        self.latency = Histogram(
            "ssmd_cache_commit_to_redis_seconds",
            "Commit time to the Redis write",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )

    @classmethod
    def get(cls) -> _Metrics:
        if cls._one is None:
            cls._one = cls()
        return cls._one


class CacheService:
    """Keeps Redis equal to the ``instruments`` view until stopped."""

    def __init__(
        self,
        dsn: str,
        nats_url: str,
        redis_url: str,
        *,
        durable: str = "cache",
        batch: int = 1000,
        drift_every: float = 60.0,
        drift_sample: int = 100,
        quotes: bool = False,
        env: str = "prod",
        metrics: bool = True,
    ) -> None:
        self.dsn = dsn
        self.nats_url = nats_url
        self.redis_url = redis_url
        self.durable = durable
        self.batch = batch
        self.drift_every = drift_every
        self.drift_sample = drift_sample
        self.quotes = quotes
        self.env = env
        self.stats = CacheStats()
        self.m = _Metrics.get() if metrics else None
        self.started = asyncio.Event()
        #: the server's WAL position read before the last load's snapshot
        self._loaded_at = 0

    async def run(self, stop: asyncio.Event) -> CacheStats:
        import redis.asyncio as aioredis

        from ssmd.bus.nats import JetStreamSource, connect, ensure_streams
        from ssmd.bus.streams import stream_specs

        r = aioredis.from_url(self.redis_url)
        try:
            # redis-py types ping() as "Awaitable or not" in some releases
            await cast("Awaitable[Any]", r.ping())
        except Exception as exc:
            await r.aclose()
            raise SinkError(f"cannot reach Redis at {_redact(self.redis_url)}: {exc}") from None
        nc = await connect(self.nats_url, name="ssmd-cache")
        # a PostgreSQL restart is ridden out: reconnect with backoff, then do the interrupted
        # step again (a load, a batch: its writes are fenced, so again changes nothing)
        db = PgSession(self.dsn, "cache", logger=log)
        quotes_task = None
        try:
            await db.open()
            await ensure_streams(
                nc.jetstream(), [s for s in stream_specs() if s.name == "SECMASTER_CDC"]
            )
            store = CacheStore(r)
            source = JetStreamSource(nc, "SECMASTER_CDC", self.durable, batch=self.batch)
            await db.call(partial(self._bootstrap, store=store, source=source), stop)
            if self.quotes:
                from ssmd.cache.quotes import QuoteCache
                from ssmd.types import Venue

                qc = QuoteCache(nc, r, self.env, [v.value for v in Venue])
                quotes_task = asyncio.create_task(qc.run(stop), name="ssmd-cache-quotes")
            self.started.set()
            next_drift = time.monotonic() + self.drift_every
            next_check = time.monotonic() + 1.0
            while not stop.is_set():
                msgs = await source.fetch(self.batch, 0.25)
                if msgs:
                    await db.call(partial(self._apply, store=store, msgs=msgs), stop)
                    await source.ack_upto(msgs[-1][0])
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 1.0
                    if not await store.loaded():
                        log.warning("cache: Redis lost the cache (FLUSHDB?): loading it again")
                        await db.call(partial(self._bootstrap, store=store, source=source), stop)
                if self.drift_every and now >= next_drift:
                    next_drift = now + self.drift_every
                    await db.call(partial(self.check_drift, store=store), stop)
                if quotes_task is not None and quotes_task.done():
                    await quotes_task  # a failure of the quote readers ends the service
            await source.close()
            if quotes_task is not None:
                await quotes_task
        except StoppedInOutage:
            log.warning("cache: stopped while PostgreSQL was away")
            if quotes_task is not None:
                await quotes_task
        finally:
            self.stats.reconnects = db.outages
            await db.close()
            await nc.close()
            await r.aclose()
        return self.stats

    async def _bootstrap(self, conn: Any, store: CacheStore, source: Any) -> None:
        """Attach at the stream's end, then load the view (changes after it are delivered)."""
        bounds = await source.stream_bounds()
        await source.start(bounds[1] if bounds else None)
        await self._load(conn, store)

    async def _load(self, conn: Any, store: CacheStore) -> None:
        """Read the view in one snapshot and swap it in, stamped (0/0, 0).

        The stamp must not be above the LSN of any change the load missed. A
        WAL position read inside the snapshot can be: a transaction whose
        commit record was written just before the read but that became
        visible only after the snapshot was taken (it was still waiting for
        its WAL flush) is absent from the rows, yet its change, delivered
        next, would look older than the load and be skipped as stale, for
        good. Read before the snapshot, the position narrows that window but
        does not close it. So the rows are stamped below every change: the
        consumer attached before the load, so each change committed since
        is delivered after it and applied (its row is read again, which is
        harmless when the load already had it); the (lsn, n) fence still
        orders the changes among themselves. The WAL position read before
        the snapshot (``L``) goes to the cache's meta key, and tells which
        CDC snapshots this load already covers (:meth:`_apply`).
        """
        t0 = time.monotonic()
        lsn = int(await conn.fetchval("SELECT pg_current_wal_lsn()"))
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(_VIEW)
        n = await store.bootstrap(rows, 0, loaded_at=lsn)
        self._loaded_at = lsn
        self.stats.bootstraps += 1
        self.stats.rows_loaded += n
        log.info("cache: %d instrument(s) loaded into Redis in %.2fs", n, time.monotonic() - t0)

    async def _apply(self, conn: Any, store: CacheStore, msgs: Sequence[tuple[int, bytes]]) -> None:
        bodies = []
        for _, data in msgs:
            try:
                bodies.append(orjson.loads(data))
            except orjson.JSONDecodeError:
                log.warning("cache: a CDC message that is not JSON, skipped")
        snapshot = max(
            (parse_lsn(b["lsn"]) for b in bodies if b.get("op") == "snapshot"), default=0
        )
        if snapshot > self._loaded_at:
            # a CDC resync: its snapshot begins; load the view again, once. The new
            # slot was created at ``snapshot``, before this load reads PostgreSQL: the
            # load holds every row the snapshot's later batches carry (they are at or
            # below its position, and skipped), and each change committed since comes
            # after them in the stream
            log.info("cache: the CDC stream carries a snapshot: loading the cache again")
            await self._load(conn, store)
            self.stats.changes += len(bodies)
            return
        if snapshot:  # rows of a snapshot loaded already: they change nothing
            self.stats.changes += sum(1 for b in bodies if b.get("op") == "snapshot")
            bodies = [b for b in bodies if b.get("op") != "snapshot"]
        a = affected(bodies)
        if not a:
            self.stats.changes += len(bodies)
            return
        last = bodies[-1]
        lsn, n = parse_lsn(last["lsn"]), int(last["n"])
        rows = await _rows(conn, a)
        found = {(str(r["venue"]), str(r["instrument_id"])) for r in rows}
        for row in rows:
            if await store.upsert(row, lsn, n):
                self.stats.written += 1
            else:
                self.stats.stale += 1
        gone = [("kalshi", t) for t in a.kalshi] + [("polymarket", c) for c in a.conditions]
        gone += [(v, p) for p in a.pairs for v in _PAIR_VENUES]
        for venue, inst in gone:
            if (venue, inst) not in found and await store.delete(venue, inst, lsn, n):
                self.stats.deleted += 1
        st = self.stats
        st.changes += len(bodies)
        st.last_apply = time.time()
        if self.m is not None:
            self.m.applied.inc(len(bodies))
            now = time.time_ns()
            for b in bodies:
                if b.get("ts"):
                    self.m.latency.observe(max(0.0, (now - int(b["ts"])) / 1e9))

    async def check_drift(self, conn: Any, store: CacheStore) -> int:
        """Compare a sample of keys with PostgreSQL; returns (and exports) how many differ."""
        rows = await conn.fetch(_VIEW + " ORDER BY random() LIMIT $1", self.drift_sample)
        bad = 0
        for row in rows:
            got = await store.get(str(row["venue"]), str(row["instrument_id"]))
            want = {f: t for f in FIELDS if (t := text(row[f])) is not None}
            if {k: v for k, v in got.items() if k in FIELDS} != want:
                bad += 1
        self.stats.drift_checked += len(rows)
        self.stats.drift = bad
        if self.m is not None:
            self.m.drift.set(bad)
        if bad:
            log.warning("cache: %d of %d sampled key(s) differ from PostgreSQL", bad, len(rows))
        return bad


async def _rows(conn: Any, a: Affected) -> list[Any]:
    out: list[Any] = []
    if a.kalshi:
        out += await conn.fetch(
            _VIEW + " WHERE venue = 'kalshi' AND instrument_id = ANY($1)", sorted(a.kalshi)
        )
    if a.events or a.series:
        out += await conn.fetch(
            _VIEW + " WHERE venue = 'kalshi' AND instrument_id IN (SELECT m.ticker FROM markets m"
            " JOIN events e ON e.event_ticker = m.event_ticker"
            " WHERE e.event_ticker = ANY($1) OR e.series_ticker = ANY($2))",
            sorted(a.events),
            sorted(a.series),
        )
    if a.pairs:
        out += await conn.fetch(
            _VIEW + " WHERE venue IN ('kraken', 'kraken-futures') AND instrument_id = ANY($1)",
            sorted(a.pairs),
        )
    if a.conditions:
        out += await conn.fetch(
            _VIEW + " WHERE venue = 'polymarket' AND instrument_id = ANY($1)", sorted(a.conditions)
        )
    return out


def _redact(url: str) -> str:
    from ssmd.secmaster.db import redact

    return redact(url)
