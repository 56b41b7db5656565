"""Dynamic subscriptions for Kalshi: ``ssmd connect kalshi --category`` follows the secmaster.

Real PostgreSQL (wal2json), nats-server, ``ssmd cdc run``, ``ssmd connect``
and ``ssmd archive run`` processes, and the Kalshi simulator (checking the
connector's signatures): the secmaster is synced from the simulator, two
markets of the filter are held back; listed later (a row inserted), each
is subscribed, its data reaches the bus and the archive; closed (a status
update), it is unsubscribed.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cdc_helpers import SsmdProcs, has_slot
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.archive import iter_lines
from ssmd.core import subject_token

pytestmark = pytest.mark.integration

CATEGORY = "Economics"  # the simulator's FED and CPI series


def _key_pair(tmp: Path) -> tuple[Path, bytes]:
    """A private key file for the connector and the public PEM for the simulator."""
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


def commands(sim: Any, ticker: str, since: float) -> list[dict[str, Any]]:
    """The connector's commands naming ``ticker`` that the simulator received after ``since``."""
    out = []
    for t, _, payload in sim.ws_commands(ticker.encode()):
        if t > since:
            out.append(orjson.loads(payload))
    return out


def subscribed(cmds: list[dict[str, Any]]) -> bool:
    return any(
        c["cmd"] == "subscribe"
        or (c["cmd"] == "update_subscription" and c["params"].get("action") == "add_markets")
        for c in cmds
    )


def unsubscribed(cmds: list[dict[str, Any]]) -> bool:
    return any(
        c["cmd"] == "update_subscription" and c["params"].get("action") == "delete_markets"
        for c in cmds
    )


async def on_bus(nats_url: str, env: str, ticker: str) -> int:
    """Messages of ``ticker`` in the Kalshi stream (any category, any kind)."""
    import nats

    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(
            f"{env.upper()}_KALSHI",
            subjects_filter=f"{env}.kalshi.*.json.*.{subject_token(ticker)}",
        )
        return sum((info.state.subjects or {}).values())
    except Exception:
        return 0
    finally:
        await nc.close()


async def test_a_listed_market_is_subscribed_archived_and_dropped_when_closed(
    pg_dsn: str, nats_url: str, bus_env: str, make_sim: MakeSim, tmp_path: Path
) -> None:
    from ssmd.secmaster import db
    from ssmd.secmaster.config import SecmasterSettings
    from ssmd.secmaster.sync import Job, run_job

    key_path, public = _key_pair(tmp_path)
    sim = await make_sim("kalshi", rate=300.0, kalshi_public_key=public)
    conn = await db.connect(pg_dsn)
    procs = SsmdProcs()
    try:
        await db.migrate(conn)
        settings = SecmasterSettings.load(
            {}, database_url=pg_dsn, urls={"kalshi": sim.rest_url}, rates={"kalshi": 0.0}
        )
        result = await run_job(settings, Job("kalshi"))
        assert result.ok, result.errors
        in_filter = [m.ticker for m in sim.venue.active if m.series in ("FED", "CPI")]
        assert len(in_filter) >= 4, in_filter
        later = in_filter[:2]  # held back: listed after the connector started
        await conn.execute(
            "CREATE TABLE held AS SELECT * FROM markets WHERE ticker = ANY($1)", later
        )
        await conn.execute("DELETE FROM markets WHERE ticker = ANY($1)", later)

        procs.env.update(
            DATABASE_URL=pg_dsn,
            NATS_URL=nats_url,
            SSMD_ENV=bus_env,
            KALSHI_API_KEY="test-key",
            KALSHI_PRIVATE_KEY_PATH=str(key_path),
        )
        slot = f"s_{uuid.uuid4().hex[:10]}"

        procs.start("cdc", "run", "--slot", slot, "--poll", "10ms")
        await async_wait_until(lambda: has_slot(pg_dsn, slot), timeout=30, message="CDC slot")
        procs.start(
            "connect", "kalshi", "--category", CATEGORY, "--ws-url", sim.ws_url,
            "--rest-url", sim.rest_url,
        )  # fmt: skip
        procs.start("archive", "run", "--dir", str(tmp_path / "data"), "--venue", "kalshi")
        await async_wait_until(
            lambda: subscribed(commands(sim, in_filter[2], 0.0)),
            timeout=30,
            message="the connector subscribed the markets of the filter",
        )
        assert not commands(sim, later[0], 0.0)  # not in the secmaster yet

        # listed: a row inserted into markets, inside the filter
        for ticker in later:
            t0 = time.monotonic()
            await conn.execute("INSERT INTO markets SELECT * FROM held WHERE ticker = $1", ticker)
            await async_wait_until(
                lambda t=ticker, s=t0: subscribed(commands(sim, t, s)),  # type: ignore[misc]
                timeout=20,
                message=f"{ticker} subscribed after its insert",
            )
        await async_wait_until(
            lambda: on_bus(nats_url, bus_env, later[0]),
            timeout=20,
            message="data of the listed market on the bus",
        )

        # closed: a status update, and the unsubscribe follows
        t1 = time.monotonic()
        await conn.execute("UPDATE markets SET status = 'closed' WHERE ticker = $1", later[0])
        await async_wait_until(
            lambda: unsubscribed(commands(sim, later[0], t1)),
            timeout=20,
            message=f"{later[0]} unsubscribed after it closed",
        )
        assert not unsubscribed(commands(sim, later[1], 0.0))  # the other stays
        await async_wait_until(
            lambda: on_bus(nats_url, bus_env, later[1]),
            timeout=20,
            message="data of the second listed market on the bus",
        )
    finally:
        await conn.close()
        stopped = procs.stop_all()
    for code, err in stopped:
        assert code == 0, err[-3000:]
    # the archiver wrote what the bus had of both listed markets
    archived = {
        t: sum(1 for _ in iter_lines(tmp_path / "data", "kalshi", instruments=[t])) for t in later
    }
    assert all(archived.values()), archived
