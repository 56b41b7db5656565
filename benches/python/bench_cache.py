"""The Redis cache: bootstrap of 35 000 instruments, and commit-to-Redis latency.

* ``test_bootstrap``: :meth:`CacheStore.bootstrap` of 35 000 rows (Lua script
  calls of 2 000 rows each into staging keys, all written before any reply is
  read, then one Lua script that renames them over the live keys: Redis runs
  a script atomically), next to a plain redis-py
  loop (one HSET and one SADD per instrument, each waiting for its reply)
  into the same Redis in the same run. Target: under 2 s.
* ``test_commit_to_redis``: ``ssmd cdc run`` and ``ssmd cache run`` as
  processes; this process commits one market update at a time and waits for
  Redis to show it. ``extra_info``: p50/p99/max in ms (target: p99 under
  250 ms). ``SSMD_BENCH_SAMPLES`` (default 300; 30 in the smoke run).

Timed run: ``bash .ci/services.sh run -- python -m pytest
benches/python/bench_cache.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ssmd.cache.store import CacheStore

asyncpg = pytest.importorskip("asyncpg")
redis_mod = pytest.importorskip("redis")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL not set: run under .ci/run or bash .ci/services.sh run -- …")
    return url


@pytest.fixture
def nats_url() -> str:
    url = os.environ.get("NATS_URL")
    if not url:
        pytest.skip("NATS_URL not set: run under .ci/run or bash .ci/services.sh run -- …")
    return url


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh database (dropped afterwards, with its replication slots)."""
    from urllib.parse import urlsplit, urlunsplit

    admin = os.environ.get("DATABASE_URL")
    if not admin:
        pytest.skip("DATABASE_URL not set: run under .ci/run or bash .ci/services.sh run -- …")
    name = f"ssmd_bench_{uuid.uuid4().hex[:12]}"

    async def admin_exec(*sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            for q in sql:
                await conn.execute(q)
        finally:
            await conn.close()

    asyncio.run(admin_exec(f'CREATE DATABASE "{name}"'))
    yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    asyncio.run(
        admin_exec(
            f"SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = '{name}'",
            f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            f" WHERE database = '{name}'",
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        )
    )


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "venue": "kalshi",
            "instrument_id": f"KXBENCH-{i:06d}",
            "symbol": f"KXBENCH-{i:06d}",
            "title": f"Will the benchmark number {i} come true?",
            "status": "active" if i % 3 else "closed",
            "kind": "binary",
            "category": "Economics",
            "tick_size": "0.01",
            "opens_at": "2026-01-01T00:00:00+00:00",
            "closes_at": "2026-12-31T00:00:00+00:00",
            "updated_at": "2026-12-04T00:00:00+00:00",
        }
        for i in range(n)
    ]


@pytest.mark.benchmark(group="cache-bootstrap")
@pytest.mark.parametrize("impl", ["ssmd", "redis-py-loop"])
def test_bootstrap(benchmark: Any, redis_url: str, impl: str) -> None:
    import redis.asyncio as aioredis

    n = 3_500 if benchmark.disabled else 35_000
    rows = _rows(n)

    async def ssmd() -> None:
        r = aioredis.from_url(redis_url)
        try:
            assert await CacheStore(r).bootstrap(rows, lsn=1) == n
        finally:
            await r.aclose()

    async def plain() -> None:
        r = aioredis.from_url(redis_url)
        try:
            for row in rows:
                key = f"ssmd:{row['venue']}:inst:{row['instrument_id']}"
                await r.hset(key, mapping={k: str(v) for k, v in row.items()})
                await r.sadd(f"ssmd:{row['venue']}:index", row["instrument_id"])
        finally:
            await r.aclose()

    t: list[float] = []

    def run() -> None:
        t0 = time.perf_counter()
        asyncio.run(ssmd() if impl == "ssmd" else plain())
        t.append(time.perf_counter() - t0)

    benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    benchmark.extra_info.update(rows=n, rows_per_s=round(n / min(t)))


@pytest.mark.benchmark(group="cache-latency")
def test_commit_to_redis(benchmark: Any, pg_dsn: str, nats_url: str, redis_url: str) -> None:
    import redis.asyncio as aioredis

    from ssmd.secmaster import db

    samples = int(os.environ.get("SSMD_BENCH_SAMPLES", "30" if benchmark.disabled else "300"))
    slot = f"sb_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "DATABASE_URL": pg_dsn, "NATS_URL": nats_url, "REDIS_URL": redis_url}

    async def setup() -> None:
        conn = await db.connect(pg_dsn)
        try:
            await db.migrate(conn)
            await conn.execute(
                "INSERT INTO series (ticker, category, raw) VALUES ('S', 'Crypto', '{}');"
                " INSERT INTO events (event_ticker, series_ticker, raw) VALUES ('E', 'S', '{}');"
                " INSERT INTO markets (ticker, event_ticker, status, title, raw)"
                " VALUES ('M', 'E', 'active', 't0', '{}')"
            )
        finally:
            await conn.close()

    asyncio.run(setup())
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ssmd", *args, "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for args in (
            ["cdc", "run", "--slot", slot, "--poll", "5ms"],
            ["cache", "run", "--consumer", f"c_{slot}", "--drift-every", "0"],
        )
    ]
    lat: list[float] = []

    async def run() -> None:
        r = aioredis.from_url(redis_url)
        conn = await asyncpg.connect(pg_dsn)
        try:
            deadline = time.monotonic() + 60
            while await r.hget("ssmd:kalshi:inst:M", "title") != b"t0":
                assert time.monotonic() < deadline, "the cache did not load"
                await asyncio.sleep(0.05)
            # changes made before the CDC slot exists never reach the stream
            q = "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1"
            while not await conn.fetchval(q, slot):
                assert time.monotonic() < deadline, "ssmd cdc run did not create its slot"
                await asyncio.sleep(0.05)
            for i in range(1, samples + 1):
                want = f"t{i}".encode()
                await conn.execute(
                    "UPDATE markets SET title = $1 WHERE ticker = 'M'", want.decode()
                )
                t0 = time.perf_counter()
                while await r.hget("ssmd:kalshi:inst:M", "title") != want:
                    await asyncio.sleep(0.0005)
                    assert time.perf_counter() - t0 < 10, "no update in 10 s"
                lat.append((time.perf_counter() - t0) * 1000)
        finally:
            await conn.close()
            await r.aclose()

    try:
        benchmark.pedantic(lambda: asyncio.run(run()), rounds=1, iterations=1)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
    lat.sort()
    benchmark.extra_info.update(
        samples=len(lat),
        p50_ms=round(statistics.median(lat), 2),
        p99_ms=round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2),
        max_ms=round(lat[-1], 2),
    )
