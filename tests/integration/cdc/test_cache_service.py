"""``ssmd cache run``: Redis equals the ``instruments`` view, row for row.

CDC and the cache run as real processes against PostgreSQL (wal2json),
nats-server and Redis; the secmaster tables get a full load, then random
inserts, updates and deletes under load, a ``FLUSHDB`` and a restart.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from cdc_helpers import cache_equals
from helpers import async_wait_until, free_port
from ssmd.cache.store import CacheStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def migrated_db(pg_dsn: str) -> AsyncIterator[str]:
    from ssmd.secmaster import db

    conn = await db.connect(pg_dsn)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    yield pg_dsn


def _proc(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ssmd", *args, "--log-level", "warning"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err.decode()


async def _load(conn: Any, rng: random.Random) -> None:
    """A full sync's worth: series, events, markets, pairs, conditions."""
    await conn.executemany(
        "INSERT INTO series (ticker, title, category, raw) VALUES ($1, $1, $2, '{}')",
        [(f"S{i}", rng.choice(["Economics", "Crypto", "Politics"])) for i in range(20)],
    )
    await conn.executemany(
        "INSERT INTO events (event_ticker, series_ticker, title, raw) VALUES ($1, $2, $1, '{}')",
        [(f"E{i}", f"S{i % 20}") for i in range(100)],
    )
    await conn.executemany(
        "INSERT INTO markets (ticker, event_ticker, status, tick_size, title, raw)"
        " VALUES ($1, $2, 'active', 0.01, $1, '{}')",
        [(f"M{i}", f"E{i % 100}") for i in range(2000)],
    )
    await conn.executemany(
        "INSERT INTO pairs (pair, market_type, symbol, base, quote, status, raw)"
        " VALUES ($1, $2, $1, 'B', 'Q', 'online', '{}')",
        [(f"P{i}", "spot" if i % 2 else "perpetual") for i in range(300)],
    )


async def _churn(conn: Any, rng: random.Random, n: int) -> None:
    for i in range(n):
        r = rng.random()
        async with conn.transaction():
            if r < 0.3:
                await conn.execute(
                    "INSERT INTO markets (ticker, event_ticker, status, raw) VALUES ($1, $2, 'active', '{}')"
                    " ON CONFLICT DO NOTHING",
                    f"N{i}",
                    f"E{rng.randrange(100)}",
                )
            elif r < 0.6:
                await conn.execute(
                    "UPDATE markets SET status = $2, title = $3 WHERE ticker = $1",
                    f"M{rng.randrange(2000)}",
                    rng.choice(["active", "closed", "settled"]),
                    f"t{i}",
                )
            elif r < 0.7:
                await conn.execute(
                    "DELETE FROM markets WHERE ticker = $1", f"M{rng.randrange(2000)}"
                )
            elif r < 0.8:  # a series' category moves every market of it
                await conn.execute(
                    "UPDATE series SET category = $2 WHERE ticker = $1",
                    f"S{rng.randrange(20)}",
                    rng.choice(["Economics", "Crypto", "Politics", "Sports"]),
                )
            elif r < 0.9:
                await conn.execute(
                    "UPDATE pairs SET status = $2 WHERE pair = $1",
                    f"P{rng.randrange(300)}",
                    rng.choice(["online", "cancel_only", "delisted"]),
                )
            else:
                await conn.execute("DELETE FROM pairs WHERE pair = $1", f"P{rng.randrange(300)}")
        if i % 20 == 0:
            await asyncio.sleep(0.005)


async def test_redis_follows_the_view_row_for_row(
    migrated_db: str, nats_url: str, redis_url: str
) -> None:
    import asyncpg

    dsn = migrated_db
    slot = f"s_{uuid.uuid4().hex[:10]}"
    env = {"DATABASE_URL": dsn, "NATS_URL": nats_url, "REDIS_URL": redis_url}
    consumer = f"cache_{uuid.uuid4().hex[:8]}"
    rng = random.Random(5)
    conn = await asyncpg.connect(dsn)
    cdc = _proc(["cdc", "run", "--slot", slot, "--poll", "10ms"], env)
    cache = None
    try:
        await async_wait_until(
            lambda: _slot_exists(dsn, slot), timeout=30, message="CDC slot created"
        )
        await _load(conn, rng)
        cache = _proc(["cache", "run", "--consumer", consumer, "--drift-every", "0"], env)
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url), timeout=30, message="cache loaded (the full sync)"
        )
        await _churn(conn, rng, 600)  # under load: the cache applies changes as they come
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url),
            timeout=30,
            message="cache caught up with the churn",
        )
        # FLUSHDB: the cache notices and loads again
        import redis.asyncio as aioredis

        r = aioredis.from_url(redis_url)
        await r.flushdb()
        await r.aclose()
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url), timeout=30, message="cache rebuilt after FLUSHDB"
        )
        # a restart: it loads again and follows the changes made while it was down
        err = _stop(cache)
        assert cache.returncode == 0, err
        await _churn(conn, rng, 100)
        cache = _proc(["cache", "run", "--consumer", consumer, "--drift-every", "0"], env)
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url), timeout=30, message="cache after a restart"
        )
        await _churn(conn, rng, 100)
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url), timeout=30, message="and after"
        )
    finally:
        await conn.close()
        for p in (cdc, cache):
            if p is not None and p.poll() is None:
                _stop(p)


async def _slot_exists(dsn: str, slot: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return bool(
            await conn.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", slot)
        )
    finally:
        await conn.close()


async def test_writes_are_fenced_by_lsn_and_n(redis_url: str) -> None:
    import redis.asyncio as aioredis

    r = aioredis.from_url(redis_url)
    store = CacheStore(r)
    row = {"venue": "kalshi", "instrument_id": "M1", "status": "active", "title": "a"}
    try:
        assert await store.bootstrap([row], lsn=100) == 1
        assert await store.upsert({**row, "title": "b"}, lsn=200, n=3)
        # older: by LSN, by n at the same LSN; LSNs compare as numbers (0x9 < 0x10)
        assert not await store.upsert({**row, "title": "old"}, lsn=150, n=9)
        assert not await store.upsert({**row, "title": "old"}, lsn=200, n=2)
        assert not await store.delete("kalshi", "M1", lsn=199, n=0)
        got = await store.get("kalshi", "M1")
        assert got["title"] == "b" and got["lsn"] == "0/C8" and got["n"] == "3"
        assert await store.upsert({**row, "status": "closed"}, lsn=(1 << 32) | 9, n=0)
        assert not await store.upsert(row, lsn=0x10, n=0)
        assert await r.sismember("ssmd:kalshi:status:closed", "M1")
        assert not await r.sismember("ssmd:kalshi:status:active", "M1")
        assert await store.delete("kalshi", "M1", lsn=(1 << 32) | 10, n=0)
        assert not await r.exists("ssmd:kalshi:inst:M1")
        assert not await r.sismember("ssmd:kalshi:index", "M1")
    finally:
        await r.aclose()


async def test_the_bootstrap_swaps_atomically(redis_url: str) -> None:
    import redis.asyncio as aioredis

    r = aioredis.from_url(redis_url)
    store = CacheStore(r)
    try:
        old = [
            {"venue": "kraken", "instrument_id": f"P{i}", "status": "online"} for i in range(2000)
        ]
        await store.bootstrap(old, lsn=1)
        new = [
            {"venue": "kraken", "instrument_id": f"Q{i}", "status": "online"} for i in range(3000)
        ]
        seen: list[int] = []

        async def watch() -> None:  # a reader sees 2 000 or 3 000 instruments, never a mix
            while True:
                seen.append(await r.scard("ssmd:kraken:index"))
                await asyncio.sleep(0)

        task = asyncio.create_task(watch())
        await store.bootstrap(new, lsn=2)
        task.cancel()
        assert set(seen) <= {2000, 3000}
        assert await r.scard("ssmd:kraken:index") == 3000
        assert not await r.exists("ssmd:kraken:inst:P0") and await r.exists("ssmd:kraken:inst:Q0")
        assert not [k async for k in r.scan_iter(match="ssmd:boot:*")]
    finally:
        await r.aclose()


async def test_quotes_keep_the_last_quote_and_trade(
    migrated_db: str, nats_url: str, redis_url: str
) -> None:
    import nats
    import redis.asyncio as aioredis

    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import spec_for_venue, stream_specs

    env_name = "t" + uuid.uuid4().hex[:10]
    env = {"DATABASE_URL": migrated_db, "NATS_URL": nats_url, "REDIS_URL": redis_url}
    env["SSMD_ENV"] = env_name
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, [spec_for_venue("kraken", stream_specs(env_name))])
    cache = _proc(
        ["cache", "run", "--quotes", "--consumer", f"c{env_name}", "--drift-every", "0"], env
    )
    r = aioredis.from_url(redis_url)
    try:
        await async_wait_until(lambda: _consumer_exists(js, env_name), timeout=30)

        def line(kind: str, msg: dict[str, Any], rx: int) -> bytes:
            subj = f"{env_name}.kraken.json.{kind}.BTC_USD"
            return orjson.dumps({"rx": rx, "conn": "c", "subj": subj, "msg": msg})

        def ticker(bid: float, ask: float) -> dict[str, Any]:
            d = {"symbol": "BTC/USD", "bid": bid, "bid_qty": 1.5, "ask": ask, "ask_qty": 2.25}
            return {"channel": "ticker", "type": "update", "data": [{**d, "last": bid}]}

        trade = {
            "channel": "trade",
            "type": "update",
            "data": [
                {
                    "symbol": "BTC/USD",
                    "side": "sell",
                    "price": 65000.1,
                    "qty": 0.25,
                    "trade_id": 9,
                    "timestamp": "2026-12-04T00:00:00.000001Z",
                }
            ],
        }
        batch = line("ticker", ticker(64999.5, 65000.5), 10) + b"\n" + line("trade", trade, 11)
        await js.publish(f"{env_name}.kraken.json.ticker.BTC_USD", batch)
        await js.publish(
            f"{env_name}.kraken.json.ticker.BTC_USD", line("ticker", ticker(64990.0, 65010.0), 12)
        )

        async def got() -> dict[str, str]:
            raw = await r.hgetall("ssmd:kraken:quote:BTC/USD")
            return {k.decode(): v.decode() for k, v in raw.items()}

        await async_wait_until(
            lambda: _has(got, "bid", "64990.0"), timeout=20, message="the newest quote in Redis"
        )
        q = await got()
        assert (q["bid"], q["ask"], q["bid_size"], q["ask_size"]) == (
            "64990.0",
            "65010.0",
            "1.5",
            "2.25",
        )
        assert (q["trade_price"], q["trade_size"], q["trade_side"]) == ("65000.1", "0.25", "sell")
        assert q["quote_rx"] == "12" and q["trade_rx"] == "11"
    finally:
        await r.aclose()
        await nc.close()
        _stop(cache)


async def _consumer_exists(js: Any, env_name: str) -> bool:
    try:
        await js.consumer_info(f"{env_name.upper()}_KRAKEN", "cache-quotes")
        return True
    except Exception:
        return False


async def _has(got: Any, field: str, value: str) -> bool:
    return (await got()).get(field) == value


def _metric(port: int, name: str) -> float | None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


async def test_drift_behind_the_cache_s_back_is_reported(
    migrated_db: str, nats_url: str, redis_url: str
) -> None:
    """A hash edited and one deleted in Redis, not through the cache: ``ssmd_cache_drift``
    (every sampled key compared with the view, ``--drift-every 1s``) counts both."""
    import asyncpg
    import redis.asyncio as aioredis

    dsn = migrated_db
    env = {"DATABASE_URL": dsn, "NATS_URL": nats_url, "REDIS_URL": redis_url}
    conn = await asyncpg.connect(dsn)
    await conn.execute(  # fewer instruments than the sample (100): every key is compared
        "INSERT INTO series (ticker, title, category, raw) VALUES ('S', 'S', 'Crypto', '{}');"
        "INSERT INTO events (event_ticker, series_ticker, title, raw) VALUES ('E', 'S', 'E', '{}');"
        "INSERT INTO markets (ticker, event_ticker, status, title, raw) VALUES"
        " ('M1', 'E', 'active', 'M1', '{}'), ('M2', 'E', 'active', 'M2', '{}');"
        "INSERT INTO pairs (pair, market_type, symbol, base, quote, status, raw) VALUES"
        " ('P1', 'spot', 'P1', 'B', 'Q', 'online', '{}'),"
        " ('P2', 'spot', 'P2', 'B', 'Q', 'online', '{}')"
    )
    await conn.close()
    port = free_port()
    args = ["cache", "run", "--consumer", f"c_{uuid.uuid4().hex[:8]}", "--drift-every", "1s"]
    cache = _proc([*args, "--metrics-port", str(port)], env)
    r = aioredis.from_url(redis_url)
    try:
        await async_wait_until(lambda: cache_equals(dsn, redis_url), timeout=30)

        async def drift(n: float) -> bool:
            if cache.poll() is not None:
                raise AssertionError(cache.communicate()[1].decode())
            return await asyncio.to_thread(_metric, port, "ssmd_cache_drift") == n

        await async_wait_until(lambda: drift(0), timeout=10, message="no drift at first")
        await r.hset("ssmd:kalshi:inst:M1", "title", "edited behind its back")
        await r.delete("ssmd:kraken:inst:P1")
        await async_wait_until(lambda: drift(2), timeout=10, message="two keys drifted")
    finally:
        await r.aclose()
        if cache.poll() is None:
            _stop(cache)


async def _run_cache(
    dsn: str, nats_url: str, redis_url: str, **kw: Any
) -> tuple[Any, asyncio.Event, asyncio.Task[Any]]:
    """A :class:`CacheService` in this process (its stats readable), started and loaded."""
    from ssmd.cache.service import CacheService

    service = CacheService(
        dsn, nats_url, redis_url, durable=f"c_{uuid.uuid4().hex[:8]}", drift_every=0,
        metrics=False, **kw,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))

    async def started() -> bool:
        if task.done():
            await task
        return service.started.is_set()

    await async_wait_until(started, timeout=30, message="cache service started")
    return service, stop, task


async def test_a_resync_snapshot_reloads_the_cache_once(
    migrated_db: str, nats_url: str, redis_url: str
) -> None:
    """A ``--resync`` snapshot of 2 420 rows reaches the cache in batches of 100: it loads the
    view again once for the snapshot, not once per batch of it."""
    import asyncpg

    dsn = migrated_db
    slot = f"s_{uuid.uuid4().hex[:10]}"
    env = {"DATABASE_URL": dsn, "NATS_URL": nats_url, "REDIS_URL": redis_url}
    conn = await asyncpg.connect(dsn)
    await _load(conn, random.Random(11))
    rows = 0
    for t in ("series", "events", "markets", "pairs"):
        rows += await conn.fetchval(f"SELECT count(*) FROM {t}")
    cdc = _proc(["cdc", "run", "--slot", slot, "--poll", "10ms"], env)
    service, stop, task = await _run_cache(dsn, nats_url, redis_url, batch=100)
    try:
        await async_wait_until(lambda: _slot_exists(dsn, slot), timeout=30)
        await async_wait_until(lambda: cache_equals(dsn, redis_url), timeout=30)
        assert service.stats.bootstraps == 1
        err = _stop(cdc)
        assert cdc.returncode == 0, err
        await conn.execute("UPDATE markets SET title = 'unseen' WHERE ticker = 'M7'")
        base = service.stats.changes
        cdc = _proc(["cdc", "run", "--slot", slot, "--poll", "10ms", "--resync"], env)

        async def consumed() -> bool:
            if task.done():
                await task
            return service.stats.changes - base >= rows

        await async_wait_until(consumed, timeout=60, message="the whole snapshot consumed")
        assert await cache_equals(dsn, redis_url)  # M7's title came with the reload
        assert service.stats.bootstraps == 2, service.stats
    finally:
        await conn.close()
        stop.set()
        await asyncio.wait_for(task, 30)
        if cdc.poll() is None:
            _stop(cdc)


async def test_a_change_below_the_load_s_lsn_delivered_after_it_is_applied(
    migrated_db: str, nats_url: str, redis_url: str
) -> None:
    """A transaction that committed before the load read the server's WAL position but was
    not yet visible to the load's snapshot reaches the cache after the load, with an LSN
    below that position: it must be applied (its row read again), not skipped as stale.
    The race is made deterministic: the row is changed with no CDC running, and its change
    published by hand with LSN 0/1."""
    import asyncpg
    import nats

    dsn = migrated_db
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "INSERT INTO series (ticker, title, category, raw) VALUES ('S', 'S', 'Crypto', '{}');"
        "INSERT INTO events (event_ticker, series_ticker, title, raw) VALUES ('E', 'S', 'E', '{}');"
        "INSERT INTO markets (ticker, event_ticker, status, title, raw)"
        " VALUES ('M1', 'E', 'active', 'M1', '{}')"
    )
    service, stop, task = await _run_cache(dsn, nats_url, redis_url)
    nc = await nats.connect(nats_url)
    try:
        await async_wait_until(lambda: cache_equals(dsn, redis_url), timeout=30)
        await conn.execute("UPDATE markets SET title = 'late' WHERE ticker = 'M1'")
        body = {"lsn": "0/1", "n": 0, "table": "markets", "op": "update", "ts": None}
        body |= {"key": {"ticker": "M1"}, "new": {"ticker": "M1", "title": "late"}, "old": {}}
        await nc.jetstream().publish(
            "cdc.markets.update",
            orjson.dumps(body),
            headers={"Nats-Msg-Id": f"late-{uuid.uuid4().hex}"},
        )
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url), timeout=30, message="the late change applied"
        )
        assert service.stats.stale == 0
    finally:
        await nc.close()
        await conn.close()
        stop.set()
        await asyncio.wait_for(task, 30)
