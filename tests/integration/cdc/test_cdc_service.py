"""``ssmd cdc run`` against real PostgreSQL (wal2json) and nats-server.

Every committed change reaches the stream once: across SIGKILLs at any
moment, for a transaction of 35 000 rows in bounded memory, and with the
stream compared against what was committed, both ways.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest

from cdc_helpers import Workload, check_stream, count_ge, read_stream, start_cdc, stop, wait_slot
from helpers import async_wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def table(pg_dsn: str) -> AsyncIterator[tuple[str, str]]:
    """A table of this test's own, and a slot name of its own."""
    import asyncpg

    name = f"cdc_t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            f"CREATE TABLE {name} (id int PRIMARY KEY, v bigint NOT NULL, price numeric, note text)"
        )
    finally:
        await conn.close()
    yield name, f"s_{uuid.uuid4().hex[:10]}"


async def test_changes_reach_the_stream_once_across_kills(
    pg_dsn: str, nats_url: str, table: tuple[str, str]
) -> None:
    import asyncpg

    name, slot = table
    rng = random.Random(17)
    await wait_slot(pg_dsn, slot, proc := start_cdc(pg_dsn, nats_url, name, slot))
    work = Workload(name, 17)
    kills = 0
    conn = await asyncpg.connect(pg_dsn)
    try:
        for txn in range(400):
            await work.transaction(conn)
            if txn in (60, 150, 230, 320):  # SIGKILL while a big transaction streams out
                await work.big(conn)
                await asyncio.sleep(rng.uniform(0.0, 0.05))
                proc.kill()
                proc.communicate(timeout=10)
                kills += 1
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                proc = start_cdc(pg_dsn, nats_url, name, slot)
            if txn % 25 == 0:
                await asyncio.sleep(0.02)
    finally:
        await conn.close()
    try:
        await async_wait_until(
            lambda: count_ge(nats_url, name, len(work.expected)), timeout=60, message="all changes"
        )
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err.decode()
    check_stream(await read_stream(nats_url, name), work)
    assert kills == 4 and len(work.expected) > 8000


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def test_a_35000_row_transaction_passes_in_bounded_memory(
    pg_dsn: str, nats_url: str, table: tuple[str, str]
) -> None:
    import asyncpg

    name, slot = table
    proc = start_cdc(pg_dsn, nats_url, name, slot, "--batch", "1000")
    await wait_slot(pg_dsn, slot, proc)
    try:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"INSERT INTO {name} VALUES (0, 0, 0, 'warm-up')")
            await async_wait_until(
                lambda: count_ge(nats_url, name, 1), timeout=30, message="warm-up change"
            )
            base = _rss_kb(proc.pid)
            await conn.execute(
                f"INSERT INTO {name} SELECT g, g, g * 0.01, repeat('x', 2000)"
                " FROM generate_series(1, 35000) g"
            )
        finally:
            await conn.close()
        await async_wait_until(
            lambda: count_ge(nats_url, name, 35001), timeout=120, message="35 000 changes"
        )
        peak = _rss_kb(proc.pid, "VmHWM")
    finally:
        stop(proc)
    # the transaction is ~80 MB of JSON (35 000 rows of ~2.3 kB); a reader that held it
    # whole (the peek fetched at once, not through the cursor) grows by far more than this
    grew_mb = (peak - base) / 1024
    assert grew_mb < 30, f"RSS grew {grew_mb:.1f} MB while the transaction passed"
    got = await read_stream(nats_url, name)
    assert len(got) == 35001 and len({i for _, _, i in got}) == 35001


async def test_setup_mistakes_are_one_line_errors(
    pg_dsn: str, nats_url: str, table: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    from ssmd.cdc import slot as slot_mod
    from ssmd.errors import ConfigError

    name, slot = table
    conn = await asyncpg.connect(pg_dsn)
    role = f"r_{uuid.uuid4().hex[:8]}"
    try:
        # the plugin is not installed
        monkeypatch.setattr(slot_mod, "PLUGIN", "no_such_plugin")
        with pytest.raises(ConfigError, match="output plugin is not installed"):
            await slot_mod.ensure_slot(conn, slot)
        monkeypatch.undo()
        # a role without REPLICATION
        await conn.execute(f"CREATE ROLE {role} LOGIN")
        dsn = pg_dsn.replace("//ssmd@", f"//{role}@")
        r = subprocess.run(
            [sys.executable, "-m", "ssmd", "cdc", "run", "--tables", name, "--slot", slot],
            env={**os.environ, "DATABASE_URL": dsn, "NATS_URL": nats_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2, r.stderr
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and f"ALTER ROLE {role} REPLICATION" in err[0], err
    finally:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
        )
        await conn.execute(f"DROP ROLE IF EXISTS {role}")
        await conn.close()
    # NATS that cannot be reached
    r = subprocess.run(
        [sys.executable, "-m", "ssmd", "cdc", "run", "--tables", name, "--slot", slot],
        env={**os.environ, "DATABASE_URL": pg_dsn, "NATS_URL": "nats://127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and r.stderr.startswith("ssmd: error: cannot reach NATS"), r.stderr


async def test_status_and_resync_snapshot(
    pg_dsn: str, nats_url: str, table: tuple[str, str]
) -> None:
    import asyncpg

    name, slot = table
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            f"INSERT INTO {name} SELECT g, g, 1.5, 'a' FROM generate_series(1, 50) g"
        )
    finally:
        await conn.close()
    proc = start_cdc(pg_dsn, nats_url, name, slot, "--resync")
    try:
        await async_wait_until(lambda: count_ge(nats_url, name, 50), timeout=30)
    finally:
        stop(proc)
    got = await read_stream(nats_url, name)
    snaps = [b for s, b, _ in got if s == f"cdc.{name}.snapshot"]
    assert len(snaps) == 50 and {b["key"]["id"] for b in snaps} == set(range(1, 51))
    assert len({b["lsn"] for b in snaps}) == 1  # all at the LSN the new slot was created at
    r = subprocess.run(
        [sys.executable, "-m", "ssmd", "cdc", "status", "--slot", slot, "--json"],
        env={**os.environ, "DATABASE_URL": pg_dsn, "NATS_URL": nats_url},
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    status = orjson.loads(r.stdout)
    assert status["slot"]["slot"] == slot and status["slot"]["lag_bytes"] is not None
    assert status["stream"]["messages"] >= 50


async def test_a_heartbeat_advances_the_slot_while_other_databases_write(
    pg_dsn: str, nats_url: str, table: tuple[str, str]
) -> None:
    """No transaction of the slot's database, WAL written by another database's: only the
    heartbeat (``--heartbeat 1s``) gives the slot something to advance past."""
    import asyncpg

    name, slot = table
    other_dsn = urlunsplit(urlsplit(pg_dsn)._replace(path="/postgres"))
    scratch = f"hb_{uuid.uuid4().hex[:10]}"
    proc = start_cdc(pg_dsn, nats_url, name, slot)  # CDC_FLAGS: --heartbeat 1s
    other = await asyncpg.connect(other_dsn)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await wait_slot(pg_dsn, slot, proc)
        await other.execute(f"CREATE TABLE {scratch} (id serial, note text)")

        async def confirmed() -> int:
            lsn = await conn.fetchval(
                "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1", slot
            )
            return int(lsn)

        start = await confirmed()
        for _ in range(20):  # ~2 MB of WAL from the other database
            await other.execute(
                f"INSERT INTO {scratch} (note) SELECT repeat('w', 1000) FROM generate_series(1, 100)"
            )
        target = int(await other.fetchval("SELECT pg_current_wal_lsn()"))
        assert target > start

        async def advanced() -> bool:
            if proc.poll() is not None:
                raise AssertionError(proc.communicate()[1].decode())
            return await confirmed() >= target

        await async_wait_until(advanced, timeout=20, message="the slot advanced past other WAL")
        assert not await count_ge(nats_url, name, 1)  # heartbeats publish nothing
    finally:
        await other.execute(f"DROP TABLE IF EXISTS {scratch}")
        await other.close()
        await conn.close()
        stop(proc)
