"""Dynamic subscriptions for Kraken spot: ``ssmd connect kraken --all`` follows ``pairs``.

Real PostgreSQL (wal2json), nats-server, ``ssmd cdc run`` and ``ssmd connect``
processes, and the Kraken simulators (spot, and Futures for the sync): the
secmaster is synced from them with one pair held back; inserted later, the
pair is subscribed and its data reaches the bus; a pair delisted (status
``delisted``, ``delisted_at`` set) is unsubscribed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest

from cdc_helpers import SsmdProcs, has_slot
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.core import subject_token

pytestmark = pytest.mark.integration


def commands(sim: Any, symbol: str, since: float, method: str) -> list[dict[str, Any]]:
    """The connector's ``method`` commands naming ``symbol`` the simulator got after ``since``."""
    out = []
    for t, _, payload in sim.ws_commands(orjson.dumps(symbol)):
        cmd = orjson.loads(payload)
        if t > since and cmd.get("method") == method:
            out.append(cmd)
    return out


async def on_bus(nats_url: str, env: str, symbol: str) -> int:
    """Messages of ``symbol`` in the Kraken stream (any channel)."""
    import nats

    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(
            f"{env.upper()}_KRAKEN", subjects_filter=f"{env}.kraken.json.*.{subject_token(symbol)}"
        )
        return sum((info.state.subjects or {}).values())
    except Exception:
        return 0
    finally:
        await nc.close()


async def test_a_listed_pair_is_subscribed_and_a_delisted_one_dropped(
    pg_dsn: str, nats_url: str, bus_env: str, make_sim: MakeSim
) -> None:
    from ssmd.secmaster import db
    from ssmd.secmaster.config import SecmasterSettings
    from ssmd.secmaster.sync import Job, run_job

    sim = await make_sim("kraken", rate=300.0)
    futures = await make_sim("kraken-futures", rate=1.0)  # the sync reads both
    conn = await db.connect(pg_dsn)
    procs = SsmdProcs()
    try:
        await db.migrate(conn)
        settings = SecmasterSettings.load(
            {},
            database_url=pg_dsn,
            urls={"kraken": sim.rest_url, "kraken-futures": futures.rest_url},
            rates={"kraken": 0.0, "kraken-futures": 0.0},
        )
        result = await run_job(settings, Job("kraken"))
        assert result.ok, result.errors
        # ETH/USD held back: listed after the connector started
        await conn.execute("CREATE TABLE held AS SELECT * FROM pairs WHERE pair = 'XETHZUSD'")
        await conn.execute("DELETE FROM pairs WHERE pair = 'XETHZUSD'")

        procs.env.update(DATABASE_URL=pg_dsn, NATS_URL=nats_url, SSMD_ENV=bus_env)
        slot = f"s_{uuid.uuid4().hex[:10]}"

        procs.start("cdc", "run", "--slot", slot, "--poll", "10ms")
        await async_wait_until(lambda: has_slot(pg_dsn, slot), timeout=30, message="CDC slot")
        procs.start(
            "connect", "kraken", "--all", "--ws-url", sim.ws_url, "--rest-url", sim.rest_url
        )
        await async_wait_until(
            lambda: bool(commands(sim, "SOL/USD", 0.0, "subscribe")),
            timeout=30,
            message="the connector subscribed the secmaster's online pairs",
        )
        assert not commands(sim, "ETH/USD", 0.0, "subscribe")  # not in the secmaster yet

        # listed: the row inserted into pairs
        t0 = time.monotonic()
        await conn.execute("INSERT INTO pairs SELECT * FROM held")
        await async_wait_until(
            lambda: bool(commands(sim, "ETH/USD", t0, "subscribe")),
            timeout=20,
            message="ETH/USD subscribed after its insert",
        )
        await async_wait_until(
            lambda: on_bus(nats_url, bus_env, "ETH/USD"),
            timeout=20,
            message="data of the listed pair on the bus",
        )

        # delisted: the unsubscribe follows; the others stay
        t1 = time.monotonic()
        await conn.execute(
            "UPDATE pairs SET status = 'delisted', delisted_at = now() WHERE pair = 'SOLUSD'"
        )
        await async_wait_until(
            lambda: bool(commands(sim, "SOL/USD", t1, "unsubscribe")),
            timeout=20,
            message="SOL/USD unsubscribed after it was delisted",
        )
        for symbol in ("ETH/USD", "BTC/USD"):
            assert not commands(sim, symbol, 0.0, "unsubscribe"), symbol
    finally:
        await conn.close()
        stopped = procs.stop_all()
    for code, err in stopped:
        assert code == 0, err[-3000:]
