"""Secmaster sync throughput: REST pages from the venue simulators into PostgreSQL.

The workload: 30 000 Kalshi markets (8 series, 3 750 events of 8 markets,
plus fee changes), 1 500 Kraken pairs (1 468 spot + 32 perpetuals) and 3 200
Polymarket conditions (6 400 tokens), served by ``ssmd sim``'s REST
endpoints (pages shaped like the venues' real responses) on an event loop
in a thread of its own.

* ``test_sync_all_venues``: the three syncs side by side into empty tables
  (target: < 10 s).
* ``test_resync_no_change``: the same again with nothing new (target: < 3 s,
  zero rows written: checked with the tables' ``xmin``).
* ``test_write_markets_bulk`` / ``test_write_markets_executemany``: only the
  database write of the 30 000 market rows, into an empty table and again
  with nothing changed: COPY + one upsert against the row-by-row
  ``executemany`` baseline with the same statement.

``extra_info`` records ``rows``, ``rows_per_s`` and ``rows_written``. Smoke
run (``--benchmark-disable``): a twentieth of the sizes. Skips without
``DATABASE_URL`` (start the services with ``bash .ci/services.sh run -- …``).

Timed run: ``bash .ci/services.sh run -- python -m pytest
benches/python/bench_secmaster.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ssmd.secmaster import db
from ssmd.secmaster.config import SecmasterSettings
from ssmd.secmaster.sync import Job, run_jobs
from ssmd.secmaster.sync.kalshi import MARKETS, market_row
from ssmd.sim import SimServer, start_sim
from ssmd.types import Venue

asyncpg = pytest.importorskip("asyncpg")

SYNCED = (
    ("series", "ticker"),
    ("series_fees", "source_id"),
    ("events", "event_ticker"),
    ("markets", "ticker"),
    ("pairs", "pair"),
    ("polymarket_conditions", "condition_id"),
    ("polymarket_tokens", "token_id"),
)


def _sizes(smoke: bool) -> dict[Venue, int]:
    """Universe sizes: Kalshi markets, Kraken spot pairs, Futures products (11 listed,
    one a dated future), Polymarket conditions."""
    if smoke:
        return {
            Venue.KALSHI: 1500,
            Venue.KRAKEN: 73,
            Venue.KRAKEN_FUTURES: 11,
            Venue.POLYMARKET: 160,
        }
    return {
        Venue.KALSHI: 30000,
        Venue.KRAKEN: 1468,
        Venue.KRAKEN_FUTURES: 33,
        Venue.POLYMARKET: 3200,
    }


class Venues:
    """The simulators of every venue (REST only), on their own event loop in a thread."""

    def __init__(self, sizes: dict[Venue, int]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> dict[Venue, SimServer]:
            return {v: await start_sim(v, rate=0.0, instruments=n) for v, n in sizes.items()}

        self.sims = asyncio.run_coroutine_threadsafe(start(), self.loop).result(60)
        self.urls = {v.value: s.rest_url for v, s in self.sims.items()}

    def close(self) -> None:
        for sim in self.sims.values():
            asyncio.run_coroutine_threadsafe(sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _admin_dsn() -> str:
    raw = os.environ.get("DATABASE_URL", "").strip()
    if not raw:
        pytest.skip("DATABASE_URL not set: run under .ci/run or bash .ci/services.sh run -- …")
    return raw


@pytest.fixture(scope="module")
def bench_dsn() -> Iterator[str]:
    """A fresh, migrated database for this module, dropped afterwards."""
    admin = _admin_dsn()
    name = f"ssmd_bench_{uuid.uuid4().hex[:12]}"

    async def admin_exec(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin_exec(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"DATABASE_URL unusable: {exc}")
    dsn = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))

    async def migrate() -> None:
        conn = await db.connect(dsn)
        try:
            await db.migrate(conn)
        finally:
            await conn.close()

    asyncio.run(migrate())
    try:
        yield dsn
    finally:
        asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def venues(request: pytest.FixtureRequest) -> Iterator[Venues]:
    smoke = bool(request.config.getoption("benchmark_disable", False))
    v = Venues(_sizes(smoke))
    try:
        yield v
    finally:
        v.close()


async def _sql(dsn: str, sql: str) -> list[Any]:
    conn = await db.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def _truncate(dsn: str) -> None:
    asyncio.run(_sql(dsn, "TRUNCATE " + ", ".join(t for t, _ in SYNCED)))


def _versions(dsn: str) -> dict[str, dict[str, str]]:
    out = {}
    for table, key in SYNCED:
        rows = asyncio.run(_sql(dsn, f"SELECT {key} AS k, xmin::text AS x FROM {table}"))
        out[table] = {r["k"]: r["x"] for r in rows}
    return out


def _settings(dsn: str, venues: Venues) -> SecmasterSettings:  # unthrottled, default attempts
    rates: dict[str, float | None] = {v: 0.0 for v in venues.urls}
    return SecmasterSettings.load({}, database_url=dsn, urls=dict(venues.urls), rates=rates)


JOBS = [Job("kalshi"), Job("kraken"), Job("polymarket")]


def _expected(venues: Venues) -> int:
    k, kr, kf, pm = (venues.sims[v].venue for v in Venue)
    perps = sum(1 for p in kf.products if p.perpetual)
    open_conditions = sum(1 for c in pm.conditions if not c.closed)
    return (
        len(k.series)
        + len(k.events)
        + len(k.markets)
        + len(k.fee_changes())
        + len(kr.pairs)
        + perps
        + 3 * open_conditions
    )


def _record(benchmark: Any, rows: int, written: int) -> None:
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["rows_written"] = written
    if not benchmark.disabled and benchmark.stats:
        benchmark.extra_info["rows_per_s"] = round(rows / benchmark.stats.stats.mean)


@pytest.mark.benchmark(group="secmaster-sync")
def test_sync_all_venues(benchmark: Any, bench_dsn: str, venues: Venues) -> None:
    results: list[Any] = []

    def run() -> None:
        results[:] = asyncio.run(run_jobs(_settings(bench_dsn, venues), JOBS))

    benchmark.pedantic(
        run, setup=lambda: _truncate(bench_dsn), rounds=1 if benchmark.disabled else 3, iterations=1
    )
    assert all(r.ok for r in results), [r.errors for r in results]
    inserted = sum(t.inserted for r in results for t in r.tables.values())
    assert inserted == _expected(venues)
    _record(benchmark, inserted, inserted)


@pytest.mark.benchmark(group="secmaster-sync")
def test_resync_no_change(benchmark: Any, bench_dsn: str, venues: Venues) -> None:
    settings = _settings(bench_dsn, venues)
    asyncio.run(run_jobs(settings, JOBS))  # make sure everything is there
    before = _versions(bench_dsn)
    results: list[Any] = []

    def run() -> None:
        results[:] = asyncio.run(run_jobs(settings, JOBS))

    benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    assert all(r.ok for r in results), [r.errors for r in results]
    written = sum(t.inserted + t.updated + t.delisted for r in results for t in r.tables.values())
    assert written == 0
    assert _versions(bench_dsn) == before  # not one tuple rewritten
    _record(benchmark, sum(t.rows for r in results for t in r.tables.values()), written)


def _market_rows(venues: Venues) -> list[tuple[Any, ...]]:
    k = venues.sims[Venue.KALSHI].venue
    return [market_row(k.market_json(m)) for m in k.markets]


def _upsert_one_sql() -> str:
    cols = MARKETS.columns
    rest = [c for c in cols if c != MARKETS.key]
    params = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    return (
        f"INSERT INTO markets AS t ({', '.join(cols)}, updated_at) VALUES ({params}, now())"
        f" ON CONFLICT (ticker) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in rest)},"
        f" updated_at = now(), delisted_at = NULL"
        f" WHERE ({', '.join(f't.{c}' for c in rest)}) IS DISTINCT FROM"
        f" ({', '.join(f'EXCLUDED.{c}' for c in rest)}) OR t.delisted_at IS NOT NULL"
    )


def _write(benchmark: Any, dsn: str, rows: list[tuple[Any, ...]], bulk: bool, state: str) -> None:
    async def write() -> None:
        conn = await db.connect(dsn)
        try:
            if bulk:
                await db.upsert(conn, MARKETS, rows)
            else:
                await conn.executemany(_upsert_one_sql(), rows)
        finally:
            await conn.close()

    def setup() -> None:
        asyncio.run(_sql(dsn, "TRUNCATE markets"))
        if state == "unchanged":
            asyncio.run(write())

    benchmark.pedantic(
        lambda: asyncio.run(write()),
        setup=setup,
        rounds=1 if benchmark.disabled else 3,
        iterations=1,
    )
    n = asyncio.run(_sql(dsn, "SELECT count(*) AS n FROM markets"))[0]["n"]
    assert n == len(rows)
    _record(benchmark, len(rows), n if state == "empty" else 0)


@pytest.mark.parametrize("state", ["empty", "unchanged"])
@pytest.mark.benchmark(group="secmaster-write")
def test_write_markets_bulk(benchmark: Any, bench_dsn: str, venues: Venues, state: str) -> None:
    """COPY into the staging table, then one upsert that skips unchanged rows."""
    _write(benchmark, bench_dsn, _market_rows(venues), bulk=True, state=state)


@pytest.mark.parametrize("state", ["empty", "unchanged"])
@pytest.mark.benchmark(group="secmaster-write")
def test_write_markets_executemany(
    benchmark: Any, bench_dsn: str, venues: Venues, state: str
) -> None:
    """Baseline: the same upsert row by row (asyncpg executemany, pipelined)."""
    _write(benchmark, bench_dsn, _market_rows(venues), bulk=False, state=state)
