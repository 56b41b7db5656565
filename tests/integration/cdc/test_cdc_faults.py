"""``ssmd cdc run`` when PostgreSQL goes away under it, or cannot decode at all.

These tests restart or reconfigure a server, so each starts a PostgreSQL
cluster of its own (``pg_cluster.PgCluster``: ``initdb`` with the binaries
``.ci/services.sh`` uses, on a free port) instead of touching the suite's
shared one; NATS is the suite's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator

import orjson
import pytest

from cdc_helpers import (
    Workload,
    cache_equals,
    check_stream,
    count_ge,
    read_stream,
    start_cdc,
    stop,
    wait_slot,
)
from helpers import async_wait_until, free_port
from nats_server import PrivateNats
from pg_cluster import PgCluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(nats_url: str) -> Iterator[PgCluster]:
    pg = PgCluster()
    try:
        yield pg.start()
    finally:
        pg.stop()


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def test_postgres_restarts_under_cdc_lose_and_repeat_nothing(
    cluster: PgCluster, nats_url: str
) -> None:
    """Restarts (fast shutdown, a crash, the backend terminated) while a big transaction
    streams out: the service reconnects and resumes from the slot; the stream then holds
    every committed change once."""
    import asyncpg

    dsn = cluster.dsn
    name, slot = f"cdc_r_{uuid.uuid4().hex[:10]}", f"s_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        f"CREATE TABLE {name} (id int PRIMARY KEY, v bigint NOT NULL, price numeric, note text)"
    )
    port = free_port()
    proc = start_cdc(dsn, nats_url, name, slot, "--metrics-port", str(port), "--json")
    await wait_slot(dsn, slot, proc)
    rng = random.Random(23)
    work = Workload(name, 23)
    outages = {60: "fast", 140: "immediate", 220: "terminate"}
    try:
        for txn in range(300):
            await work.transaction(conn)
            how = outages.get(txn)
            if how is None:
                if txn % 25 == 0:
                    await asyncio.sleep(0.02)
                continue
            # three outages, not one the service is still backing off from: each begins
            # once it is connected again (on a busy machine its backoff can outlast the
            # test's next 80 transactions, and a terminate would then find no backend)
            await async_wait_until(
                lambda: _metric(port, "ssmd_cdc_postgres_connected") == 1,
                timeout=60,
                message=f"connected before the {how} outage",
            )
            await work.big(conn)  # the service is streaming it out when the server goes
            await asyncio.sleep(rng.uniform(0.0, 0.05))
            if how == "terminate":
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                continue
            await conn.close()
            await asyncio.to_thread(cluster.restart, how)
            assert proc.poll() is None, proc.communicate()[1].decode()
            conn = await asyncpg.connect(dsn)
        await async_wait_until(
            lambda: count_ge(nats_url, name, len(work.expected)), timeout=90, message="all changes"
        )
        outages_metric = _metric(port, "ssmd_cdc_postgres_outages_total")
        connected = _metric(port, "ssmd_cdc_postgres_connected")
    finally:
        await conn.close()
        out, err = stop(proc)
    log = err.decode()
    assert proc.returncode == 0, log
    assert (outages_metric, connected) == (3, 1), log
    # each outage is logged once when it starts and once when it ends
    assert log.count("cdc: lost PostgreSQL") == 3, log
    assert log.count("cdc: PostgreSQL is back after") == 3, log
    stats = orjson.loads(out)
    assert stats["reconnects"] == 3 and stats["outage_seconds"] > 0
    check_stream(await read_stream(nats_url, name), work)
    assert len(work.expected) > 6000


async def test_nats_killed_under_cdc_loses_and_repeats_nothing(
    pg_dsn: str, private_nats: PrivateNats
) -> None:
    """nats-server killed (SIGKILL) twice while a big transaction streams out, and started
    again a moment later on its store: the service rides it out (the client reconnects and
    what was not acknowledged is sent again with its id) and the stream holds every
    committed change once."""
    import asyncpg

    name, slot = f"cdc_n_{uuid.uuid4().hex[:10]}", f"s_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(
        f"CREATE TABLE {name} (id int PRIMARY KEY, v bigint NOT NULL, price numeric, note text)"
    )
    url = private_nats.url
    proc = start_cdc(pg_dsn, url, name, slot, "--json")
    await wait_slot(pg_dsn, slot, proc)
    rng = random.Random(29)
    work = Workload(name, 29)
    try:
        for txn in range(300):
            await work.transaction(conn)
            if txn in (80, 190):
                await work.big(conn)
                await asyncio.sleep(rng.uniform(0.0, 0.05))
                private_nats.stop(kill=True)
                await work.transaction(conn)  # committed while the server is down
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                private_nats.start()
                assert proc.poll() is None, proc.communicate()[1].decode()
            elif txn % 25 == 0:
                await asyncio.sleep(0.02)
        await async_wait_until(
            lambda: count_ge(url, name, len(work.expected)), timeout=90, message="all changes"
        )
    finally:
        await conn.close()
        out, err = stop(proc)
        with contextlib.suppress(Exception):
            await _drop_slot(pg_dsn, slot)
    log = err.decode()
    assert proc.returncode == 0 and "Traceback" not in log, log
    check_stream(await read_stream(url, name), work)
    stats = orjson.loads(out)
    assert stats["changes"] >= len(work.expected) > 6000, stats


async def _drop_slot(dsn: str, slot: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_drop_replication_slot($1)", slot)
    finally:
        await conn.close()


@pytest.fixture
def replica_cluster() -> Iterator[PgCluster]:
    pg = PgCluster(wal_level="replica")
    try:
        yield pg.start()
    finally:
        pg.stop()


def test_wal_level_not_logical_is_a_one_line_error(
    replica_cluster: PgCluster, nats_url: str
) -> None:
    """A real server with ``wal_level=replica``: the error says what to run."""
    r = subprocess.run(
        [sys.executable, "-m", "ssmd", "cdc", "run", "--tables", "markets"],
        env={**os.environ, "DATABASE_URL": replica_cluster.dsn, "NATS_URL": nats_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, err
    assert "wal_level is 'replica'" in err[0], err
    assert "ALTER SYSTEM SET wal_level = logical" in err[0] and "restart" in err[0], err


@pytest.fixture
def small_wal_cluster(nats_url: str) -> Iterator[PgCluster]:
    """A cluster that invalidates a slot more than 1 MB of WAL behind at a checkpoint."""
    pg = PgCluster(settings=["max_slot_wal_keep_size = 1MB"])
    try:
        yield pg.start()
    finally:
        pg.stop()


async def _invalidate(dsn: str, slot: str) -> None:
    """Write WAL past the slot's reserve (a segment switch, a checkpoint) until it is lost."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS wal_filler (id serial, note text)")

        async def lost() -> bool:
            await conn.execute("INSERT INTO wal_filler (note) VALUES ('x')")
            await conn.execute("SELECT pg_switch_wal()")
            await conn.execute("CHECKPOINT")
            status = await conn.fetchval(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1", slot
            )
            return bool(status == "lost")

        await async_wait_until(lost, timeout=30, message=f"slot {slot} invalidated")
    finally:
        await conn.close()


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ssmd", *args, "--log-level", "warning"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _cli(dsn: str, nats_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        env={**os.environ, "DATABASE_URL": dsn, "NATS_URL": nats_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_slot_invalidated_while_streaming_names_resync(
    small_wal_cluster: PgCluster, nats_url: str
) -> None:
    """The peek (or advance) on a slot PostgreSQL invalidated under a running service fails
    with SQLSTATE 55000; the service reports the lost slot and what to run, not that code."""
    import asyncpg
    import nats

    from ssmd.bus.nats import NatsTransport
    from ssmd.cdc.publish import Publisher
    from ssmd.cdc.service import CdcService
    from ssmd.cdc.slot import SlotLost, ensure_slot

    dsn = small_wal_cluster.dsn
    slot = f"s_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(dsn)
    nc = await nats.connect(nats_url)
    try:
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        await ensure_slot(conn, slot)
        service = CdcService(dsn, nats_url, tables=["t"], slot=slot, metrics=False)
        await _invalidate(dsn, slot)
        pub = Publisher(NatsTransport(nc), window=16)
        await pub.start()
        try:
            with pytest.raises(SlotLost, match="--resync"):
                await service._stream(conn, pub, asyncio.Event())
        finally:
            await pub.close()
    finally:
        await nc.close()
        await conn.close()


async def test_an_invalidated_slot_is_reported_and_resync_rebuilds_the_cache(
    small_wal_cluster: PgCluster, nats_url: str, redis_url: str
) -> None:
    """PostgreSQL invalidates the slot while ``ssmd cdc run`` is stopped in its tracks: the
    service ends with the one-line error naming ``--resync``, at start-up too; ``ssmd cdc
    status`` reports the slot lost (table and ``--json``, exit 2); ``--resync`` publishes a
    snapshot, and ``ssmd cache run`` reloads on it, picking up the changes no slot saw."""
    import asyncpg

    from ssmd.secmaster import db

    dsn = small_wal_cluster.dsn
    slot = f"s_{uuid.uuid4().hex[:10]}"
    env = {"DATABASE_URL": dsn, "NATS_URL": nats_url, "REDIS_URL": redis_url}
    conn = await db.connect(dsn)
    await db.migrate(conn)
    await conn.close()
    conn = await asyncpg.connect(dsn)
    cdc_args = ["cdc", "run", "--slot", slot, "--poll", "10ms", "--heartbeat", "1s"]
    cdc = _spawn(env, *cdc_args)
    cache = _spawn(env, "cache", "run", "--consumer", f"c_{slot}", "--drift-every", "0")
    try:
        await wait_slot(dsn, slot, cdc)
        await conn.execute(
            "INSERT INTO series (ticker, title, category, raw) VALUES ('S', 'S', 'Crypto', '{}')"
        )
        await conn.execute(
            "INSERT INTO events (event_ticker, series_ticker, title, raw) VALUES ('E', 'S', 'E', '{}')"
        )
        await conn.executemany(
            "INSERT INTO markets (ticker, event_ticker, status, title, raw)"
            " VALUES ($1, 'E', 'active', $1, '{}')",
            [(f"M{i}",) for i in range(20)],
        )
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url), timeout=30, message="cache follows the view"
        )

        # invalidated under the running service (stopped, as a stuck one is): it ends, and
        # says what to run
        os.kill(cdc.pid, signal.SIGSTOP)
        try:
            await _invalidate(dsn, slot)
        finally:
            os.kill(cdc.pid, signal.SIGCONT)
        _, err_b = cdc.communicate(timeout=60)
        err = err_b.decode()
        assert cdc.returncode == 2, err
        assert "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("ssmd: error: replication slot") and "--resync" in last, err

        # changes while no slot captures anything: only a snapshot can bring them
        await conn.execute(
            "UPDATE markets SET status = 'closed', title = 'late' WHERE ticker = 'M1'"
        )
        await conn.execute("DELETE FROM markets WHERE ticker = 'M2'")
        await conn.execute(
            "INSERT INTO markets (ticker, event_ticker, status, title, raw)"
            " VALUES ('M99', 'E', 'active', 'new', '{}')"
        )

        # at start-up: the same one line
        r = _cli(dsn, nats_url, *cdc_args)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "invalidated" in lines[0] and "--resync" in lines[0], lines

        # status: lost, exit 2, table and JSON alike
        r = _cli(dsn, nats_url, "cdc", "status", "--slot", slot)
        assert r.returncode == 2 and "lost" in r.stdout, (r.stdout, r.stderr)
        assert "--resync" in r.stderr.strip().splitlines()[-1], r.stderr
        r = _cli(dsn, nats_url, "cdc", "status", "--slot", slot, "--json")
        assert r.returncode == 2, r.stderr
        assert orjson.loads(r.stdout)["slot"]["wal_status"] == "lost"
        assert "--resync" in r.stderr, r.stderr
        assert cache.poll() is None and not await cache_equals(dsn, redis_url)

        # --resync: a new slot, a snapshot of the tables; the cache reloads on it
        cdc = _spawn(env, *cdc_args, "--resync")
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url),
            timeout=30,
            message="cache reloaded on the snapshot",
        )
        got = await read_stream(nats_url, "markets")
        snapshot = [b for s, b, _ in got if s == "cdc.markets.snapshot"]
        at = snapshot[-1]["lsn"]  # the newest snapshot (the stream is the suite's)
        snaps = {b["key"]["ticker"] for b in snapshot if b["lsn"] == at}
        assert {"M1", "M99"} <= snaps and "M2" not in snaps
        r = _cli(dsn, nats_url, "cdc", "status", "--slot", slot, "--json")
        assert r.returncode == 0 and orjson.loads(r.stdout)["slot"]["wal_status"] != "lost"
        # and it streams again
        await conn.execute("UPDATE markets SET title = 'after' WHERE ticker = 'M3'")
        await async_wait_until(
            lambda: cache_equals(dsn, redis_url), timeout=30, message="a change after the resync"
        )
    finally:
        await conn.close()
        for p in (cdc, cache):
            if p.poll() is None:
                stop(p)


async def test_lifecycle_and_cache_ride_out_postgres_restarts(
    cluster: PgCluster, nats_url: str, redis_url: str
) -> None:
    """``ssmd lifecycle run`` and ``ssmd cache run`` (with ``ssmd cdc run``) while PostgreSQL
    restarts twice (fast, then a crash): each reconnects, applies what came meanwhile, and
    ends cleanly, its outages counted."""
    import asyncpg
    import nats

    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import spec_for_venue, stream_specs
    from ssmd.secmaster import db

    dsn = cluster.dsn
    env_name = "t" + uuid.uuid4().hex[:10]
    slot = f"s_{uuid.uuid4().hex[:10]}"
    conn = await db.connect(dsn)
    await db.migrate(conn)
    await conn.execute(
        "INSERT INTO series (ticker, title, category, raw) VALUES ('S', 'S', 'Crypto', '{}');"
        "INSERT INTO events (event_ticker, series_ticker, title, raw) VALUES ('E', 'S', 'E', '{}');"
        "INSERT INTO markets (ticker, event_ticker, status, title, raw)"
        " SELECT 'M' || g, 'E', 'initialized', 'M' || g, '{}' FROM generate_series(1, 4) g"
    )
    await conn.close()
    env = {"DATABASE_URL": dsn, "NATS_URL": nats_url, "REDIS_URL": redis_url}
    env["SSMD_ENV"] = env_name
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, [spec_for_venue("kalshi", stream_specs(env_name))])
    sent = 0

    async def activate(ticker: str) -> None:
        nonlocal sent
        subject = f"{env_name}.kalshi.crypto.json.lifecycle.{ticker}"
        msg = {"market_ticker": ticker, "event_type": "activated"}
        line = {"rx": 1, "conn": "c1", "subj": subject}
        line["msg"] = {"type": "market_lifecycle_v2", "sid": 1, "msg": msg}
        sent += 1
        await js.publish(subject, orjson.dumps(line), headers={"Nats-Msg-Id": f"{env_name}:{sent}"})

    async def status(ticker: str, want: str) -> bool:
        try:
            c = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError):
            return False
        try:
            return bool(
                await c.fetchval("SELECT status FROM markets WHERE ticker = $1", ticker) == want
            )
        finally:
            await c.close()

    cdc = _spawn(env, "cdc", "run", "--slot", slot, "--poll", "10ms")
    cache = _spawn(env, "cache", "run", "--consumer", f"c_{slot}", "--drift-every", "0", "--json")
    life = _spawn(env, "lifecycle", "run", "--json")
    procs = (cdc, cache, life)
    try:
        await wait_slot(dsn, slot, cdc)
        await activate("M1")
        await async_wait_until(lambda: status("M1", "active"), timeout=30, message="M1 active")
        await async_wait_until(lambda: cache_equals(dsn, redis_url), timeout=30)
        for i, how in enumerate(("fast", "immediate")):
            await asyncio.to_thread(cluster.restart, how)
            for p in procs:
                assert p.poll() is None, p.communicate()[1].decode()
            ticker = f"M{i + 2}"
            await activate(ticker)
            await async_wait_until(
                lambda t=ticker: status(t, "active"),  # type: ignore[misc]
                timeout=60,
                message=f"{ticker} active after the {how} restart",
            )
            await async_wait_until(
                lambda: cache_equals(dsn, redis_url),
                timeout=60,
                message=f"the cache follows after the {how} restart",
            )
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(f"{env_name.upper()}_KALSHI")
        await nc.close()
        outs = {}
        for name, p in zip(("cdc", "cache", "lifecycle"), procs, strict=True):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=60)
            outs[name] = (p.returncode, out.decode(), err.decode())
            # shown when the test fails, whichever step failed
            print(f"--- {name}, exit {p.returncode}:\n{out.decode()}{err.decode()[-3000:]}")  # noqa: T201
    for name, (rc, _, err) in outs.items():
        assert rc == 0 and "Traceback" not in err, (name, err[-3000:])
    for name in ("cache", "lifecycle"):
        _, out, err = outs[name]
        assert orjson.loads(out)["reconnects"] >= 1, (name, out)
        assert f"{name}: PostgreSQL is back after" in err, (name, err)
