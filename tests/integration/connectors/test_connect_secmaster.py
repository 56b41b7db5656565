"""Instruments resolved through the secmaster (DATABASE_URL) against the venue's REST discovery.

For each venue the secmaster is synced from the simulator's REST endpoints
(the same code as ``ssmd secmaster sync`` / ``ssmd kraken sync`` /
``ssmd polymarket sync``), then the same query is resolved both ways and
must give the same resolution. Then rows are changed in the database only,
to show that ``--category`` and ``--all`` filter on the stored status and
category. Errors (unreachable, not migrated, bad URL, never synced) are one
line without the password. Real PostgreSQL 15 (``pg_dsn``), real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sim_client import MakeSim
from ssmd.connectors.base import InstrumentQuery, Resolution
from ssmd.connectors.registry import create
from ssmd.errors import ConfigError
from ssmd.secmaster import db
from ssmd.secmaster.config import SecmasterSettings
from ssmd.secmaster.sync import Job, run_job
from ssmd.sim import SimServer
from ssmd.types import Venue

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-pw"


# -- fixtures and helpers -----------------------------------------------------------


@pytest.fixture
async def migrated(pg_dsn: str) -> str:
    conn = await db.connect(pg_dsn)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    return pg_dsn


@pytest.fixture(scope="module")
def kalshi_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("kalshi") / "key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


@pytest.fixture
async def sims(make_sim: MakeSim) -> dict[str, SimServer]:
    """Every venue's simulator (slow data: only their REST endpoints matter here)."""
    return {v.value: await make_sim(v, rate=1.0) for v in Venue}


async def sync(dsn: str, sims: dict[str, SimServer], job: str) -> None:
    """``ssmd <job> sync`` against the simulators (unthrottled)."""
    settings = SecmasterSettings.load(
        {},
        database_url=dsn,
        urls={v: s.rest_url for v, s in sims.items()},
        rates={v: 0.0 for v in sims},
    )
    result = await run_job(settings, Job(job))
    assert result.ok, result.errors


async def execute(dsn: str, sql: str, *args: Any) -> None:
    conn = await db.connect(dsn)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str, *args: Any) -> list[Any]:
    conn = await db.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def connector(venue: str, sim: SimServer, dsn: str | None, key: str, **extra: Any) -> Any:
    settings: dict[str, Any] = {"ws_url": sim.ws_url, "rest_url": sim.rest_url, **extra}
    if dsn is not None:
        settings["database_url"] = dsn
    if venue == "kalshi":
        settings |= {"api_key": "kid", "private_key_path": key}
    return create(venue, settings)


async def resolve(
    venue: str, sim: SimServer, dsn: str | None, query: InstrumentQuery, key: str = ""
) -> Resolution:
    """``query`` through the secmaster at ``dsn``, or through the simulator's REST when None."""
    async with httpx.AsyncClient() as client:
        res: Resolution = await connector(venue, sim, dsn, key).resolve(query, client)
    return res


def norm(r: Resolution) -> tuple[Any, ...]:
    """A resolution with its instruments sorted (their order only decides sharding)."""
    assert len(r.instruments) == len(set(r.instruments))
    return (sorted(r.instruments), r.precisions, r.categories, r.subject_ids, r.global_subscription)


async def both(
    venue: str, sim: SimServer, dsn: str, query: InstrumentQuery, key: str = ""
) -> Resolution:
    """Resolve ``query`` both ways, check they agree, return the secmaster's."""
    rest = await resolve(venue, sim, None, query, key)
    sm = await resolve(venue, sim, dsn, query, key)
    assert norm(sm) == norm(rest)
    return sm


async def fails_both(
    venue: str, sim: SimServer, dsn: str, query: InstrumentQuery, match: str, key: str = ""
) -> None:
    for source in (None, dsn):
        with pytest.raises(ConfigError, match=match):
            await resolve(venue, sim, source, query, key)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the same resolution both ways ---------------------------------------------------------


async def test_kalshi_same_resolution_and_category_status_filter(
    migrated: str, sims: dict[str, SimServer], kalshi_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    sim = sims["kalshi"]
    await sync(migrated, sims, "kalshi")
    caplog.set_level(logging.INFO, logger="ssmd.connect")

    crypto = await both(
        "kalshi", sim, migrated, InstrumentQuery(categories=("cRYPTO",)), kalshi_key
    )
    assert crypto.instruments and crypto.categories["KXBTCD"] == "Crypto"
    assert {m.split("-", 1)[0] for m in crypto.instruments} == {"KXBTCD", "KXETHD"}
    # the sim settled some crypto markets: stored, but not subscribed (status=open = active)
    stored = await fetch(migrated, "SELECT ticker, status FROM markets WHERE ticker LIKE 'KX%D-%'")
    settled = {r["ticker"] for r in stored if r["status"] != "active"}
    assert settled and not settled & set(crypto.instruments)
    assert "through the secmaster at postgresql://" in caplog.text
    assert "through the venue's REST API" in caplog.text

    query = InstrumentQuery(symbols=("KXEXTRA-1",), categories=("Economics", "politics"))
    econ = await both("kalshi", sim, migrated, query, kalshi_key)
    assert econ.instruments[0] == "KXEXTRA-1" and len(econ.instruments) > 1
    ticks = tuple(crypto.instruments[:2])
    sym = await both("kalshi", sim, migrated, InstrumentQuery(symbols=ticks), kalshi_key)
    assert sym.instruments == list(ticks) and sym.categories == crypto.categories
    everything = await both("kalshi", sim, migrated, InstrumentQuery(all=True), kalshi_key)
    assert everything.global_subscription and not everything.instruments
    await fails_both(
        "kalshi", sim, migrated, InstrumentQuery(categories=("Nope",)), "no series in", kalshi_key
    )

    # the database alone decides: a market closed, one delisted, a series moved to Sports,
    # an event not stored (its markets fall back to the ticker's series)
    closed, gone = crypto.instruments[0], crypto.instruments[1]
    await execute(migrated, "UPDATE markets SET status = 'closed' WHERE ticker = $1", closed)
    await execute(
        migrated,
        "UPDATE markets SET status = 'delisted', delisted_at = now() WHERE ticker = $1",
        gone,
    )
    await execute(migrated, "UPDATE series SET category = 'Sports' WHERE ticker = 'KXETHD'")
    eth_event = next(m for m in crypto.instruments if m.startswith("KXETHD-")).rsplit("-", 1)[0]
    await execute(migrated, "DELETE FROM events WHERE event_ticker = $1", eth_event)
    after = await resolve(
        "kalshi", sim, migrated, InstrumentQuery(categories=("crypto",)), kalshi_key
    )
    assert set(after.instruments) == {m for m in crypto.instruments if m.startswith("KXBTCD-")} - {
        closed,
        gone,
    }
    assert after.categories["KXETHD"] == "Sports"
    sports = await resolve(
        "kalshi", sim, migrated, InstrumentQuery(categories=("sports",)), kalshi_key
    )
    eth = {m for m in crypto.instruments if m.startswith("KXETHD-")}
    assert eth <= set(sports.instruments)
    assert {m for m in eth if m.startswith(eth_event + "-")} <= set(sports.instruments)


async def test_kalshi_query_checks_come_before_any_source(
    sims: dict[str, SimServer], kalshi_key: str
) -> None:
    dsn = f"postgresql://ssmd:{PASSWORD}@127.0.0.1:{closed_port()}/ssmd"
    c = connector("kalshi", sims["kalshi"], dsn, kalshi_key, channels=("orderbook_delta",))
    async with httpx.AsyncClient() as client:
        with pytest.raises(ConfigError, match="orderbook_delta needs markets"):
            await c.resolve(InstrumentQuery(all=True), client)


async def test_kraken_same_resolution_and_all_status_filter(
    migrated: str, sims: dict[str, SimServer]
) -> None:
    sim = sims["kraken"]
    await sync(migrated, sims, "kraken")

    everything = await both("kraken", sim, migrated, InstrumentQuery(all=True))
    assert "BTC/USD" in everything.instruments and everything.precisions["BTC/USD"] == (1, 8)
    assert set(everything.precisions) == set(everything.instruments)
    names = ("XBT/USD", "XBTUSD", "XXBTZUSD", "xdg/usd", "ETH/USD", "NEW/PAIR")
    named = await both("kraken", sim, migrated, InstrumentQuery(symbols=names))
    assert named.instruments == ["BTC/USD", "DOGE/USD", "ETH/USD", "NEW/PAIR"]
    assert "NEW/PAIR" not in named.precisions and named.precisions["DOGE/USD"] == (7, 8)
    await fails_both("kraken", sim, migrated, InstrumentQuery(symbols=("NOPE",)), "unknown pair")

    # --all takes status 'online' only; a delisted pair is unknown to the secmaster by name
    await execute(migrated, "UPDATE pairs SET status = 'cancel_only' WHERE pair = 'XETHZUSD'")
    await execute(
        migrated,
        "UPDATE pairs SET status = 'delisted', delisted_at = now() WHERE pair = 'SOLUSD'",
    )
    after = await resolve("kraken", sim, migrated, InstrumentQuery(all=True))
    assert set(after.instruments) == set(everything.instruments) - {"ETH/USD", "SOL/USD"}
    named = await resolve("kraken", sim, migrated, InstrumentQuery(symbols=("ETHUSD", "SOL/USD")))
    assert named.instruments == ["ETH/USD", "SOL/USD"]
    assert named.precisions == {"ETH/USD": (2, 8)}
    with pytest.raises(ConfigError, match="not in the secmaster"):
        await resolve("kraken", sim, migrated, InstrumentQuery(symbols=("SOLUSD",)))


async def test_kraken_futures_same_resolution_and_all_status_filter(
    migrated: str, sims: dict[str, SimServer]
) -> None:
    sim = sims["kraken-futures"]
    await sync(migrated, sims, "kraken")

    rest = await resolve("kraken-futures", sim, None, InstrumentQuery(all=True))
    sm = await resolve("kraken-futures", sim, migrated, InstrumentQuery(all=True))
    # the secmaster keeps perpetuals only (docs/secmaster.md): the sim's one dated future is not there
    dated = [p for p in rest.instruments if p.startswith("FF_")]
    assert dated == ["FF_XBTUSD_261225"]
    assert norm(sm) == norm(Resolution(instruments=[p for p in rest.instruments if p not in dated]))
    ids = InstrumentQuery(symbols=("pf_xbtusd", "PI_ETHUSD", "FF_XBTUSD_261225"))
    assert (await both("kraken-futures", sim, migrated, ids)).instruments == [
        "PF_XBTUSD",
        "PI_ETHUSD",
        "FF_XBTUSD_261225",
    ]

    # tradeable and unexpired: online, post_only, suspended (unless not tradeable)
    for pair, status, tradeable in (
        ("PF_XBTUSD", "expired", True),
        ("PF_ETHUSD", "offline", False),
        ("PF_SOLUSD", "post_only", True),
        ("PF_XRPUSD", "suspended", True),
        ("PF_DOGEUSD", "suspended", False),
        ("PF_ADAUSD", "delisted", True),
    ):
        await execute(
            migrated,
            "UPDATE pairs SET status = $2,"
            " raw = jsonb_set(raw, '{tradeable}', to_jsonb($3::boolean)) WHERE pair = $1",
            pair,
            status,
            tradeable,
        )
    after = await resolve("kraken-futures", sim, migrated, InstrumentQuery(all=True))
    assert set(after.instruments) == set(sm.instruments) - {
        "PF_XBTUSD",
        "PF_ETHUSD",
        "PF_DOGEUSD",
        "PF_ADAUSD",
    }
    assert {"PF_SOLUSD", "PF_XRPUSD"} <= set(after.instruments)


async def test_polymarket_same_resolution_and_all_status_filter(
    migrated: str, sims: dict[str, SimServer]
) -> None:
    sim = sims["polymarket"]
    await sync(migrated, sims, "polymarket")
    venue: Any = sim.venue
    conds = [c for c in venue.conditions if not c.closed]

    everything = await both("polymarket", sim, migrated, InstrumentQuery(all=True))
    assert len(everything.instruments) == 2 * len(conds) and len(conds) < len(venue.conditions)
    assert everything.subject_ids[conds[0].yes] == conds[0].condition_id
    names = (conds[2].no, conds[0].condition_id, conds[1].condition_id)
    named = await both("polymarket", sim, migrated, InstrumentQuery(symbols=names))
    assert named.instruments[0] == conds[2].no
    assert set(named.instruments[1:]) == {conds[0].yes, conds[0].no, conds[1].yes, conds[1].no}
    assert named.subject_ids[conds[1].no] == conds[1].condition_id
    await fails_both(
        "polymarket",
        sim,
        migrated,
        InstrumentQuery(symbols=("0x" + "ab" * 32,)),
        "unknown condition",
    )

    # --all: active and suspended (open, not accepting orders); by id any status unless delisted
    for cond, status in ((conds[0], "closed"), (conds[1], "suspended"), (conds[2], "inactive")):
        await execute(
            migrated,
            "UPDATE polymarket_conditions SET status = $2 WHERE condition_id = $1",
            cond.condition_id,
            status,
        )
    await execute(
        migrated,
        "UPDATE polymarket_conditions SET status = 'delisted', delisted_at = now()"
        " WHERE condition_id = $1",
        conds[3].condition_id,
    )
    after = await resolve("polymarket", sim, migrated, InstrumentQuery(all=True))
    dropped = {t for c in (conds[0], conds[2], conds[3]) for t in (c.yes, c.no)}
    assert set(after.instruments) == set(everything.instruments) - dropped
    upper = conds[0].condition_id.upper().replace("0X", "0x")
    by_id = await resolve("polymarket", sim, migrated, InstrumentQuery(symbols=(upper,)))
    assert by_id.instruments == [conds[0].yes, conds[0].no]
    assert by_id.subject_ids[conds[0].yes] == conds[0].condition_id
    with pytest.raises(ConfigError, match="unknown condition"):
        await resolve(
            "polymarket", sim, migrated, InstrumentQuery(symbols=(conds[3].condition_id,))
        )


# -- errors -------------------------------------------------------------------------


async def test_explicit_ids_need_no_database(sims: dict[str, SimServer]) -> None:
    dsn = f"postgresql://ssmd:{PASSWORD}@127.0.0.1:{closed_port()}/ssmd"
    fut = await resolve(
        "kraken-futures", sims["kraken-futures"], dsn, InstrumentQuery(symbols=("PF_XBTUSD",))
    )
    assert fut.instruments == ["PF_XBTUSD"]
    poly = await resolve("polymarket", sims["polymarket"], dsn, InstrumentQuery(symbols=("123",)))
    assert poly.instruments == ["123"]


async def test_unreachable_or_malformed_database_is_one_line_without_password(
    sims: dict[str, SimServer],
) -> None:
    sim = sims["kraken"]
    cases = [
        (
            f"postgresql://ssmd:{PASSWORD}@127.0.0.1:{closed_port()}/ssmd",
            r"cannot connect to PostgreSQL at postgresql://ssmd:\*\*\*@127\.0\.0\.1",
        ),
        (f"postgresql://ssmd:{PASSWORD}@127.0.0.1:notaport/ssmd", "bad DATABASE_URL .*notaport"),
        ("mysql://x@127.0.0.1/x", "must be a postgresql:// URL"),
    ]
    for dsn, match in cases:
        with pytest.raises(ConfigError, match=match) as err:
            await resolve("kraken", sim, dsn, InstrumentQuery(all=True))
        text = str(err.value)
        assert "\n" not in text and PASSWORD not in text, text
        assert text.startswith("kraken: secmaster: "), text


async def test_unmigrated_database_is_one_line(pg_dsn: str, sims: dict[str, SimServer]) -> None:
    with pytest.raises(ConfigError, match=r"missing 0001_secmaster.*run `ssmd db migrate` first"):
        await resolve("kraken", sims["kraken"], pg_dsn, InstrumentQuery(symbols=("BTC/USD",)))


async def test_never_synced_secmaster_says_which_sync(
    migrated: str, sims: dict[str, SimServer], kalshi_key: str
) -> None:
    for venue, query, needle in (
        ("kalshi", InstrumentQuery(all=True), "no series: run `ssmd secmaster sync` first"),
        ("kalshi", InstrumentQuery(categories=("Crypto",)), "run `ssmd secmaster sync` first"),
        ("kraken", InstrumentQuery(all=True), r"no Kraken spot pairs \(run `ssmd kraken sync`"),
        ("kraken-futures", InstrumentQuery(all=True), r"no perpetuals \(run `ssmd kraken sync`"),
        ("polymarket", InstrumentQuery(all=True), r"no conditions \(run `ssmd polymarket sync`"),
    ):
        with pytest.raises(ConfigError, match=needle):
            await resolve(venue, sims[venue], migrated, query, kalshi_key)
    # metadata only (explicit tickers, v2 symbols): a warning, the ids as given
    res = await resolve("kraken", sims["kraken"], migrated, InstrumentQuery(symbols=("BTC/USD",)))
    assert res.instruments == ["BTC/USD"] and not res.precisions
    res = await resolve(
        "kalshi", sims["kalshi"], migrated, InstrumentQuery(symbols=("X-1",)), kalshi_key
    )
    assert res.instruments == ["X-1"] and not res.categories


# -- the command line ----------------------------------------------------------------


async def ssmd_connect(
    sim: SimServer, tmp: Path, *args: str, env: dict[str, str]
) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ssmd",
        "connect",
        "kraken",
        "--ws-url",
        sim.ws_url,
        "--rest-url",
        sim.rest_url,
        "--dir",
        str(tmp),
        "--duration",
        "0.5",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if k != "NATS_URL"}, **env},
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_connect_says_which_source_and_fails_in_one_line(
    pg_dsn: str, sims: dict[str, SimServer], tmp_path: Path
) -> None:
    sim = sims["kraken"]
    code, err = await ssmd_connect(sim, tmp_path, "--all", env={"DATABASE_URL": pg_dsn})
    lines = [x for x in err.splitlines() if x.startswith("ssmd: error: ")]
    assert code == 2 and len(lines) == 1 and "run `ssmd db migrate` first" in lines[0], err
    assert "Traceback" not in err

    dsn = f"postgresql://ssmd:{PASSWORD}@127.0.0.1:{closed_port()}/ssmd"
    code, err = await ssmd_connect(sim, tmp_path, "--all", env={"DATABASE_URL": dsn})
    lines = [x for x in err.splitlines() if x.startswith("ssmd: error: ")]
    assert code == 2 and len(lines) == 1 and "cannot connect to PostgreSQL" in lines[0], err
    assert PASSWORD not in err and "Traceback" not in err

    conn = await db.connect(pg_dsn)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    await sync(pg_dsn, sims, "kraken")
    code, err = await ssmd_connect(sim, tmp_path, "--all", env={"DATABASE_URL": pg_dsn})
    assert code == 0, err
    assert "kraken: resolving instruments through the secmaster at postgresql://" in err
    # --database-url '' overrides DATABASE_URL: the venue's REST API
    code, err = await ssmd_connect(
        sim, tmp_path, "--all", "--database-url", "", env={"DATABASE_URL": dsn}
    )
    assert code == 0, err
    assert "kraken: resolving instruments through the venue's REST API at http://" in err
