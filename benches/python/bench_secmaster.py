"""Secmaster sync throughput: REST pages from a local server into PostgreSQL.

The workload of the issue: 30 000 Kalshi markets (600 series x 5 events x
10 markets, plus fee changes), 1 500 Kraken pairs (1 468 spot + 32
perpetuals) and 3 200 Polymarket conditions (6 400 tokens), served by the
tests' venue server (``tests/unit/secmaster/secmaster_server.py``, pages
shaped like the venues' real responses) in a thread of its own.

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

from secmaster_server import (
    FakeKalshi,
    FakeKraken,
    FakePolymarket,
    Venues,
    polymarket_market,
    start_venues,
)
from ssmd.secmaster import db
from ssmd.secmaster.config import SecmasterSettings
from ssmd.secmaster.sync import Job, run_jobs
from ssmd.secmaster.sync.kalshi import MARKETS, market_row

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


def _sizes(smoke: bool) -> dict[str, int]:
    if smoke:
        return {"series": 30, "spot": 73, "perp": 2, "conditions": 160}
    return {"series": 600, "spot": 1468, "perp": 32, "conditions": 3200}


class _ServerThread:
    """The venue server on its own event loop in a daemon thread."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        pm = FakePolymarket(0)
        pm.markets = {
            m["conditionId"]: m for m in map(polymarket_market, range(sizes["conditions"]))
        }
        self.venues: Venues = asyncio.run_coroutine_threadsafe(
            start_venues(
                FakeKalshi(sizes["series"], 5, 10), FakeKraken(sizes["spot"], sizes["perp"]), pm
            ),
            self.loop,
        ).result(60)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.venues.server.close(), self.loop).result(10)
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
def server(request: pytest.FixtureRequest) -> Iterator[_ServerThread]:
    smoke = bool(request.config.getoption("benchmark_disable", False))
    srv = _ServerThread(_sizes(smoke))
    try:
        yield srv
    finally:
        srv.close()


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
    k, kr, pm = venues.kalshi, venues.kraken, venues.polymarket
    perps = sum(1 for i in kr.instruments if "lastTradingTime" not in i)
    return (
        len(k.series)
        + len(k.events)
        + len(k.markets)
        + len(k.fee_changes)
        + len(kr.pairs)
        + perps
        + 3 * len(pm.markets)
    )


def _record(benchmark: Any, rows: int, written: int) -> None:
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["rows_written"] = written
    if not benchmark.disabled and benchmark.stats:
        benchmark.extra_info["rows_per_s"] = round(rows / benchmark.stats.stats.mean)


@pytest.mark.benchmark(group="secmaster-sync")
def test_sync_all_venues(benchmark: Any, bench_dsn: str, server: _ServerThread) -> None:
    venues = server.venues
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
def test_resync_no_change(benchmark: Any, bench_dsn: str, server: _ServerThread) -> None:
    venues = server.venues
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
    return [market_row(m) for m in venues.kalshi.markets.values()]


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
def test_write_markets_bulk(
    benchmark: Any, bench_dsn: str, server: _ServerThread, state: str
) -> None:
    """COPY into the staging table, then one upsert that skips unchanged rows."""
    _write(benchmark, bench_dsn, _market_rows(server.venues), bulk=True, state=state)


@pytest.mark.parametrize("state", ["empty", "unchanged"])
@pytest.mark.benchmark(group="secmaster-write")
def test_write_markets_executemany(
    benchmark: Any, bench_dsn: str, server: _ServerThread, state: str
) -> None:
    """Baseline: the same upsert row by row (asyncpg executemany, pipelined)."""
    _write(benchmark, bench_dsn, _market_rows(server.venues), bulk=False, state=state)
