"""``ssmd cdc run`` when PostgreSQL goes away under it, or cannot decode at all.

These tests restart or reconfigure a server, so each starts a PostgreSQL
cluster of its own (``pg_cluster.PgCluster``: ``initdb`` with the binaries
``.ci/services.sh`` uses, on a free port) instead of touching the suite's
shared one; NATS is the suite's.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator

import orjson
import pytest

from cdc_helpers import Workload, check_stream, count_ge, read_stream, start_cdc, stop, wait_slot
from helpers import async_wait_until
from pg_cluster import PgCluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(nats_url: str) -> Iterator[PgCluster]:
    pg = PgCluster()
    try:
        yield pg.start()
    finally:
        pg.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    port = _free_port()
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
        assert _metric(port, "ssmd_cdc_postgres_outages_total") == 3
        assert _metric(port, "ssmd_cdc_postgres_connected") == 1
    finally:
        await conn.close()
        out, err = stop(proc)
    log = err.decode()
    assert proc.returncode == 0, log
    # each outage is logged once when it starts and once when it ends
    assert log.count("cdc: lost PostgreSQL") == 3, log
    assert log.count("cdc: PostgreSQL is back after") == 3, log
    stats = orjson.loads(out)
    assert stats["reconnects"] == 3 and stats["outage_seconds"] > 0
    check_stream(await read_stream(nats_url, name), work)
    assert len(work.expected) > 6000


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
