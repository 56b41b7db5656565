"""CDC: commit-to-NATS latency and the throughput of one large transaction.

* ``test_commit_to_nats_latency``: ``ssmd cdc run`` (its own process) while
  this process commits 1 000 changed rows/s (100 transactions/s of 10 rows)
  for ``SSMD_BENCH_SECONDS`` (default 60; 3 in the smoke run). Latency is
  the time from a change's commit (``ts`` in its body, PostgreSQL's clock on
  this host) to its arrival at a NATS subscriber of ``cdc.{table}.>``:
  ``extra_info`` has p50, p99 and max in ms (target: p99 under 100 ms).
* ``test_large_transaction``: one transaction of 35 000 rows (3 500 in the
  smoke run), from commit to its last change at the subscriber, next to
  ``pg_recvlogical`` decoding the same transaction into a file through its
  own slot in the same run (commit to its commit record in the file).

Timed run: ``bash .ci/services.sh run -- python -m pytest
benches/python/bench_cdc.py --benchmark-only``. Skips without
``DATABASE_URL``/``NATS_URL``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

asyncpg = pytest.importorskip("asyncpg")
nats = pytest.importorskip("nats")


@pytest.fixture
def services() -> tuple[str, str]:
    dsn, url = os.environ.get("DATABASE_URL"), os.environ.get("NATS_URL")
    if not dsn or not url:
        pytest.skip(
            "DATABASE_URL/NATS_URL not set: run under .ci/run or bash .ci/services.sh run -- …"
        )
    return dsn, url


@pytest.fixture
def table(services: tuple[str, str]) -> Iterator[tuple[str, str]]:
    dsn, _ = services
    name = f"cdc_b_{uuid.uuid4().hex[:10]}"
    slot = f"sb_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE TABLE {name} (id int PRIMARY KEY, v bigint, note text)"))
    yield name, slot
    asyncio.run(
        run(
            f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            f" WHERE slot_name IN ('{slot}', '{slot}_r') AND NOT active; DROP TABLE {name}"
        )
    )


CDC_FLAGS = ("--poll", "5ms", "--log-level", "warning")


def _options(table: str) -> list[str]:
    return ["-o", "format-version=2", "-o", f"add-tables=public.{table}"]


def _start(dsn: str, url: str, name: str, slot: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssmd", "cdc", "run", "--tables", name, "--slot", slot, *CDC_FLAGS],
        env={**os.environ, "DATABASE_URL": dsn, "NATS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    async def wait() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for _ in range(300):
                if await conn.fetchval(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name=$1", slot
                ):
                    return
                if proc.poll() is not None:
                    raise AssertionError(proc.communicate()[1].decode())
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
        raise AssertionError("ssmd cdc run did not start")

    asyncio.run(wait())
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


@pytest.mark.benchmark(group="cdc")
def test_commit_to_nats_latency(
    benchmark: Any, services: tuple[str, str], table: tuple[str, str]
) -> None:
    dsn, url = services
    name, slot = table
    seconds = float(os.environ.get("SSMD_BENCH_SECONDS", "3" if benchmark.disabled else "60"))
    proc = _start(dsn, url, name, slot)
    lat: list[float] = []

    async def run() -> int:
        nc = await nats.connect(url)
        got = 0

        async def on_msg(msg: Any) -> None:
            nonlocal got
            now = time.time_ns()
            body = orjson.loads(msg.data)
            lat.append((now - body["ts"]) / 1e6)
            got += 1

        await nc.subscribe(f"cdc.{name}.>", cb=on_msg)
        conn = await asyncpg.connect(dsn)
        sent = 0
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                tick = t0 + sent / 1000
                await asyncio.sleep(max(0.0, tick - time.monotonic()))
                await conn.executemany(
                    f"INSERT INTO {name} VALUES ($1, $2, 'x')",
                    [(sent + i, sent + i) for i in range(10)],
                )
                sent += 10
            deadline = time.monotonic() + 10
            while got < sent and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            await conn.close()
            await nc.close()
        return sent

    sent: list[int] = []
    try:
        benchmark.pedantic(lambda: sent.append(asyncio.run(run())), rounds=1, iterations=1)
    finally:
        _stop(proc)
    assert len(lat) == sent[0]
    benchmark.extra_info.update(
        rows=sent[0],
        rows_per_s=round(sent[0] / seconds),
        p50_ms=round(statistics.median(lat), 2),
        p99_ms=round(_pct(lat, 0.99), 2),
        max_ms=round(max(lat), 2),
    )


@pytest.mark.benchmark(group="cdc")
def test_large_transaction(
    benchmark: Any, services: tuple[str, str], table: tuple[str, str], tmp_path: Path
) -> None:
    dsn, url = services
    name, slot = table
    rows = 3_500 if benchmark.disabled else 35_000
    proc = _start(dsn, url, name, slot)
    recv = shutil.which("pg_recvlogical") or "/usr/lib/postgresql/15/bin/pg_recvlogical"
    out = tmp_path / "recvlogical.jsonl"
    rslot = f"{slot}_r"
    subprocess.run(
        [recv, "-d", dsn, "--slot", rslot, "--create-slot", "--plugin", "wal2json"],
        check=True,
        capture_output=True,
    )
    baseline = subprocess.Popen(
        [recv, "-d", dsn, "--slot", rslot, "--start", "-f", str(out), "-F", "1", *_options(name)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result: dict[str, float] = {}

    async def run() -> None:
        nc = await nats.connect(url)
        got = 0
        done = asyncio.Event()
        t_last = 0.0

        async def on_msg(msg: Any) -> None:
            nonlocal got, t_last
            got += 1
            if got == rows:
                t_last = time.monotonic()
                done.set()

        await nc.subscribe(f"cdc.{name}.>", cb=on_msg)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                f"INSERT INTO {name} SELECT g, g, repeat('x', 300) FROM generate_series(1, {rows}) g"
            )
            t_commit = time.monotonic()
            t_file = 0.0
            while not done.is_set() or not t_file:
                if not t_file and out.exists() and b'"action":"C"' in out.read_bytes()[-400:]:
                    t_file = time.monotonic()
                await asyncio.sleep(0.002)
                if time.monotonic() - t_commit > 120:
                    raise AssertionError("the transaction did not arrive in 120 s")
            result.update(ssmd=t_last - t_commit, pg_recvlogical=t_file - t_commit)
        finally:
            await conn.close()
            await nc.close()

    try:
        benchmark.pedantic(lambda: asyncio.run(run()), rounds=1, iterations=1)
    finally:
        _stop(proc)
        baseline.send_signal(signal.SIGINT)
        baseline.wait(20)
    benchmark.extra_info.update(
        rows=rows,
        ssmd_seconds=round(result["ssmd"], 3),
        ssmd_rows_per_s=round(rows / result["ssmd"]),
        pg_recvlogical_seconds=round(result["pg_recvlogical"], 3),
        pg_recvlogical_rows_per_s=round(rows / result["pg_recvlogical"]),
    )
