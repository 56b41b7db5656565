"""Dynamic subscriptions: commit-to-subscribe time of a newly listed market.

``test_commit_to_subscribe``: the Kalshi simulator (in this process, checking
signatures), the secmaster synced from it into a fresh database, then
``ssmd cdc run`` (its defaults: 20 ms poll) and ``ssmd connect kalshi
--category Economics`` as processes on the suite's NATS. A few markets of
the filter are held back; each sample inserts one of them into ``markets``
and times from just before the ``INSERT`` (its commit included) to the
moment the simulator receives the connector's command naming the market
(``update_subscription`` ``add_markets``); then it deletes the row again and
times the ``delete_markets`` the same way. ``extra_info``: p50/p99/max of
both in ms (target for subscribe: under 2 s). ``SSMD_BENCH_SAMPLES``
(default 100; 5 in the smoke run).

What the time is made of: the CDC poll (up to 20 ms), publish and delivery
to the follower, the follower's 0.2 s debounce (a burst of listings is one
resolution), the filter resolved again in PostgreSQL, and the command.

Timed run: ``bash .ci/services.sh run -- python -m pytest
benches/python/bench_follow.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
import os
import random
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

CATEGORY = "Economics"  # the simulator's FED and CPI series


@pytest.fixture
def services() -> tuple[str, str]:
    dsn, url = os.environ.get("DATABASE_URL"), os.environ.get("NATS_URL")
    if not dsn or not url:
        pytest.skip(
            "DATABASE_URL/NATS_URL not set: run under .ci/run or bash .ci/services.sh run -- …"
        )
    return dsn, url


@pytest.fixture
def pg_dsn(services: tuple[str, str]) -> Iterator[str]:
    """A fresh database (dropped afterwards, with its replication slots)."""
    from urllib.parse import urlsplit, urlunsplit

    admin = services[0]
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


@pytest.fixture
def env_name(services: tuple[str, str]) -> Iterator[str]:
    """A bus environment of this run's own (its streams deleted afterwards)."""
    env = "b" + uuid.uuid4().hex[:10]
    yield env

    async def cleanup() -> None:
        nc = await nats.connect(services[1])
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name.startswith(env.upper() + "_"):
                await js.delete_stream(info.config.name)
        await nc.close()

    asyncio.run(cleanup())


def _key_pair(tmp: Path) -> tuple[Path, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp / "kalshi.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


def _action(sim: Any, ticker: str, since: float, action: str) -> float | None:
    """When the simulator received a command with ``action`` naming ``ticker`` after ``since``."""
    for t, _, payload in sim.ws_commands(ticker.encode()):
        if t <= since:
            continue
        cmd = orjson.loads(payload)
        if cmd["cmd"] == "update_subscription" and cmd["params"].get("action") == action:
            return float(t)
        if action == "add_markets" and cmd["cmd"] == "subscribe":
            return float(t)
    return None


async def _until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.002)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


@pytest.mark.benchmark(group="follow")
def test_commit_to_subscribe(
    benchmark: Any, services: tuple[str, str], pg_dsn: str, env_name: str, tmp_path: Path
) -> None:
    from ssmd.secmaster import db
    from ssmd.secmaster.config import SecmasterSettings
    from ssmd.secmaster.sync import Job, run_job
    from ssmd.sim import start_sim

    samples = int(os.environ.get("SSMD_BENCH_SAMPLES", "5" if benchmark.disabled else "100"))
    nats_url = services[1]
    key_path, public = _key_pair(tmp_path)
    slot = f"sb_{uuid.uuid4().hex[:10]}"
    sub: list[float] = []
    unsub: list[float] = []
    rng = random.Random(5)

    async def run() -> None:
        sim = await start_sim("kalshi", rate=50.0, kalshi_public_key=public)
        conn = await db.connect(pg_dsn)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            await db.migrate(conn)
            settings = SecmasterSettings.load(
                {}, database_url=pg_dsn, urls={"kalshi": sim.rest_url}, rates={"kalshi": 0.0}
            )
            assert (await run_job(settings, Job("kalshi"))).ok
            in_filter = [m.ticker for m in sim.venue.active if m.series in ("FED", "CPI")]
            held, listed = in_filter[:8], in_filter[8]
            await conn.execute(
                "CREATE TABLE held AS SELECT * FROM markets WHERE ticker = ANY($1)", held
            )
            await conn.execute("DELETE FROM markets WHERE ticker = ANY($1)", held)
            env = {
                **os.environ,
                "DATABASE_URL": pg_dsn,
                "NATS_URL": nats_url,
                "SSMD_ENV": env_name,
                "KALSHI_API_KEY": "bench-key",
                "KALSHI_PRIVATE_KEY_PATH": str(key_path),
            }

            def start(*args: str) -> None:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "ssmd", *args, "--log-level", "warning"],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )

            start("cdc", "run", "--slot", slot)
            # changes committed before the slot exists never reach the stream
            q = "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1"
            deadline = time.monotonic() + 30
            while not await conn.fetchval(q, slot):
                assert procs[0].poll() is None, "ssmd cdc run ended"
                assert time.monotonic() < deadline, "ssmd cdc run did not create its slot"
                await asyncio.sleep(0.05)
            start(
                "connect", "kalshi", "--category", CATEGORY,
                "--ws-url", sim.ws_url, "--rest-url", sim.rest_url,
            )  # fmt: skip
            await _until(lambda: _action(sim, listed, 0.0, "add_markets"), "first subscribe")
            for i in range(samples):
                ticker = held[i % len(held)]
                t0 = time.monotonic()
                await conn.execute(
                    "INSERT INTO markets SELECT * FROM held WHERE ticker = $1", ticker
                )
                t_sub = await _until(
                    lambda t=ticker, s=t0: _action(sim, t, s, "add_markets"), ticker
                )
                sub.append((t_sub - t0) * 1000)
                await asyncio.sleep(rng.uniform(0.05, 0.3))
                t1 = time.monotonic()
                await conn.execute("DELETE FROM markets WHERE ticker = $1", ticker)
                t_unsub = await _until(
                    lambda t=ticker, s=t1: _action(sim, t, s, "delete_markets"), ticker
                )
                unsub.append((t_unsub - t1) * 1000)
                await asyncio.sleep(rng.uniform(0.05, 0.3))
        finally:
            await conn.close()
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                await asyncio.to_thread(p.wait, 30)
            await sim.stop()

    benchmark.pedantic(lambda: asyncio.run(run()), rounds=1, iterations=1)
    assert len(sub) == len(unsub) == samples
    benchmark.extra_info.update(
        samples=samples,
        subscribe_p50_ms=round(statistics.median(sub), 1),
        subscribe_p99_ms=round(_pct(sub, 0.99), 1),
        subscribe_max_ms=round(max(sub), 1),
        unsubscribe_p50_ms=round(statistics.median(unsub), 1),
        unsubscribe_p99_ms=round(_pct(unsub, 0.99), 1),
        unsubscribe_max_ms=round(max(unsub), 1),
    )
