"""Dynamic subscriptions: ``ssmd connect polymarket --all`` follows the secmaster through CDC.

Real PostgreSQL (wal2json), nats-server, ``ssmd cdc run`` and ``ssmd connect``
processes, and the Polymarket simulator: conditions listed after the
connector started are subscribed within seconds of the commit (a second
connection opening at the 500-token cap), and a closed one is unsubscribed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from typing import Any

import pytest

from helpers import async_wait_until
from ssmd.sim import start_sim

pytestmark = pytest.mark.integration


async def _insert(conn: Any, conds: list[Any], status: str = "active") -> None:
    await conn.executemany(
        "INSERT INTO polymarket_conditions (condition_id, question, slug, category, outcomes,"
        " status, raw) VALUES ($1, $2, $3, $4, ARRAY['Yes','No'], $5, '{}')",
        [(c.condition_id, c.question, c.slug, c.category, status) for c in conds],
    )
    await conn.executemany(
        "INSERT INTO polymarket_tokens (token_id, condition_id, outcome, outcome_index, raw)"
        " VALUES ($1, $2, $3, $4, '{}')",
        [
            (t, c.condition_id, o, i)
            for c in conds
            for i, (t, o) in enumerate(((c.yes, "Yes"), (c.no, "No")))
        ],
    )


def _urls(sim: Any) -> list[str]:
    return ["--ws-url", sim.ws_url, "--rest-url", sim.rest_url, "--log-level", "info"]


def _subs(sim: Any) -> list[int]:
    return sorted(sim.stats()["subscriptions"].values())


async def test_new_conditions_are_subscribed_and_closed_ones_dropped(
    pg_dsn: str, nats_url: str, bus_env: str
) -> None:

    from ssmd.secmaster import db

    sim = await start_sim("polymarket", rate=200.0, instruments=400)
    conds = [c for c in sim.venue.conditions if not c.closed]
    first, later = conds[:100], conds[100:400]
    conn = await db.connect(pg_dsn)
    await db.migrate(conn)
    await _insert(conn, first)
    env = {**os.environ, "DATABASE_URL": pg_dsn, "NATS_URL": nats_url, "SSMD_ENV": bus_env}
    slot = f"s_{uuid.uuid4().hex[:10]}"
    cdc = subprocess.Popen(
        [sys.executable, "-m", "ssmd", "cdc", "run", "--slot", slot, "--poll", "10ms"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    cap = None
    try:
        await async_wait_until(
            lambda: _has_slot(pg_dsn, slot), timeout=30, message="CDC slot created"
        )
        cap = subprocess.Popen(
            [sys.executable, "-m", "ssmd", "connect", "polymarket", "--all", *_urls(sim)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        await async_wait_until(lambda: _subs(sim) == [200], timeout=30, message="200 tokens")
        # 300 conditions listed at once: 600 tokens, past the 500-token cap of a connection
        async with conn.transaction():
            await _insert(conn, later)
        # followed, not timed: commit-to-subscribe time (target 2 s) is a benchmark's figure
        await async_wait_until(
            lambda: sum(_subs(sim)) == 800, timeout=30, message="800 tokens subscribed"
        )
        assert len(_subs(sim)) == 2 and max(_subs(sim)) <= 500, _subs(sim)
        # a closed condition is unsubscribed (both tokens)
        await conn.execute(
            "UPDATE polymarket_conditions SET status = 'closed' WHERE condition_id = $1",
            later[0].condition_id,
        )
        await async_wait_until(lambda: sum(_subs(sim)) == 798, timeout=10, message="798 tokens")
        # data of a newly listed condition reaches the bus
        await async_wait_until(
            lambda: _subject_count(nats_url, bus_env, later[-1].condition_id),
            timeout=20,
            message="data of a new condition on the bus",
        )
    finally:
        await conn.close()
        for p in (cap, cdc):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (cap, cdc):
            if p is not None:
                _, err = p.communicate(timeout=30)
                assert p.returncode == 0, err.decode()[-2000:]
        await sim.stop()


async def _has_slot(dsn: str, slot: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return bool(
            await conn.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", slot)
        )
    finally:
        await conn.close()


async def _subject_count(nats_url: str, env: str, condition: str) -> bool:
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(
            f"{env.upper()}_POLYMARKET", subjects_filter=f"{env}.polymarket.json.*.{condition}"
        )
        return bool(info.state.subjects)
    except Exception:
        return False
    finally:
        await nc.close()
