"""The secmaster commands run as real processes: ssmd db migrate, secmaster sync/show/search,
kraken sync, polymarket sync; user errors are one line."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from secmaster_venues import Venues
from ssmd.secmaster import db

ENV_KEYS = (
    "DATABASE_URL",
    "SSMD_KALSHI_REST_URL",
    "SSMD_KRAKEN_REST_URL",
    "SSMD_KRAKEN_FUTURES_REST_URL",
    "SSMD_POLYMARKET_GAMMA_URL",
)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(extra or {})
    return env


async def ssmd(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``python -m ssmd`` without blocking the loop (the venue server lives in it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ssmd",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(env),
        cwd=Path(__file__).parent,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def one_line_error(code: int, err: str, needle: str, expect: int = 2) -> None:
    """One ``ssmd: error:`` line; exit 2 for a usage error, 1 for a server that cannot be reached."""
    assert code == expect, err
    assert err.count("\n") == 1 and err.startswith("ssmd: error: ") and needle in err, err
    assert "Traceback" not in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_missing_database_url_is_one_line() -> None:
    for args in (["secmaster", "sync"], ["db", "migrate"], ["secmaster", "search", "x"]):
        code, _, err = await ssmd(*args)
        one_line_error(code, err, "DATABASE_URL is not set")


async def test_unreachable_database_is_one_line() -> None:
    url = f"postgresql://ssmd:secret@127.0.0.1:{_closed_port()}/ssmd"
    code, _, err = await ssmd("db", "migrate", env={"DATABASE_URL": url})
    one_line_error(code, err, "cannot connect to PostgreSQL", expect=1)
    assert "secret" not in err and "***" in err


async def test_bad_flags_are_one_line() -> None:
    env = {"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    code, _, err = await ssmd("secmaster", "sync", "--status", "bogus", env=env)
    one_line_error(code, err, "unknown --status 'bogus'")
    code, _, err = await ssmd("secmaster", "sync", "--url", "ftp://x", env=env)
    one_line_error(code, err, "must be an http(s) URL")
    code, _, err = await ssmd("secmaster", "search", "x", "--venue", "nyse", env=env)
    one_line_error(code, err, "is not one of")


@pytest.mark.integration
async def test_migrate_sync_show_search(pg_dsn: str, venues: Venues) -> None:
    env = {"DATABASE_URL": pg_dsn}
    code, _, err = await ssmd("secmaster", "sync", env=env)
    one_line_error(code, err, "ssmd db migrate")

    from ssmd.secmaster.db import load_migrations

    for expect in (f"{len(load_migrations())} applied now", "0 applied now"):
        code, out, err = await ssmd("db", "migrate", env=env)
        assert code == 0 and expect in out, err

    urls = venues.urls
    code, out, err = await ssmd(
        "secmaster", "sync", "--url", urls["kalshi"], "--rate", "0", "--json", env=env
    )
    assert code == 0, err
    [summary] = json.loads(out)
    tables = {t["table"]: t for t in summary["tables"]}
    assert tables["markets"]["inserted"] == len(venues.kalshi.venue.markets)
    assert set(tables["markets"]) >= {
        "fetched",
        "inserted",
        "updated",
        "unchanged",
        "marked_inactive",
    }
    assert summary["seconds"] > 0

    code, out, err = await ssmd(
        "kraken", "sync", "--url", urls["kraken"], "--futures-url", urls["kraken-futures"], env=env
    )
    assert code == 0, err
    assert "pairs" in out and "marked inactive" in out and "unchanged" in out

    code, out, err = await ssmd(
        "polymarket", "sync", env={**env, "SSMD_POLYMARKET_GAMMA_URL": urls["polymarket"]}
    )
    assert code == 0, err
    assert "polymarket_tokens" in out

    # --all, every URL from the environment: nothing new, nothing written
    code, out, err = await ssmd(
        "secmaster",
        "sync",
        "--all",
        "--json",
        env={
            **env,
            "SSMD_KALSHI_REST_URL": urls["kalshi"],
            "SSMD_KRAKEN_REST_URL": urls["kraken"],
            "SSMD_KRAKEN_FUTURES_REST_URL": urls["kraken-futures"],
            "SSMD_POLYMARKET_GAMMA_URL": urls["polymarket"],
            "SSMD_KALSHI_RATE": "0",
            "SSMD_KRAKEN_RATE": "0",
        },
    )
    assert code == 0, err
    results = json.loads(out)
    assert [r["sync"] for r in results] == ["kalshi", "kraken", "polymarket"]
    assert all(t["inserted"] == t["updated"] == 0 for r in results for t in r["tables"])

    market = venues.kalshi.venue.markets[0]
    ticker = market.ticker
    code, out, err = await ssmd("secmaster", "show", ticker, env=env)
    assert code == 0, err
    assert f"instrument_id {ticker}" in out and market.series in out and "rules_primary" in out
    code, out, err = await ssmd("secmaster", "show", "btc/usd", "--json", env=env)
    assert code == 0, err
    [pair] = json.loads(out)
    assert pair["instrument_id"] == "XXBTZUSD" and pair["raw"]["wsname"] == "XBT/USD"
    code, _, err = await ssmd("secmaster", "show", "NOPE-123", env=env)
    one_line_error(code, err, "no instrument 'NOPE-123'")

    code, out, err = await ssmd("secmaster", "search", "nvda", "--venue", "polymarket", env=env)
    assert code == 0, err
    nvda = [
        c
        for c in venues.polymarket.venue.conditions
        if not c.closed and "nvda" in f"{c.question} {c.slug}".lower()
    ]
    assert 0 < len(out.splitlines()) == len(nvda)
    code, out, err = await ssmd("secmaster", "search", "usd", "--json", "-n", "3", env=env)
    assert code == 0 and len(json.loads(out)) == 3, err
    two = ["--venue", "kraken", "--venue", "kraken-futures"]
    code, out, err = await ssmd("secmaster", "search", "usd", *two, "--json", "-n", "5000", env=env)
    assert code == 0, err
    assert {r["venue"] for r in json.loads(out)} == {"kraken", "kraken-futures"}
    code, out, err = await ssmd(
        "secmaster", "show", "btc/usd", "--venue", "kalshi", "--venue", "polymarket", env=env
    )
    one_line_error(code, err, "no instrument 'btc/usd'")


@pytest.mark.integration
async def test_unreachable_venue_is_one_line(migrated: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/trade-api/v2"
    code, _, err = await ssmd(
        "secmaster", "sync", "--url", url, "--attempts", "1", env={"DATABASE_URL": migrated}
    )
    one_line_error(code, err, "kalshi API unreachable", expect=1)
    # the venue is what failed, not the database (a ConnectorError is an OSError too)
    assert "PostgreSQL" not in err, err


@pytest.mark.integration
async def test_failed_listing_exits_1_after_the_summary(migrated: str, venues: Venues) -> None:
    venues.kraken.inject(
        "rest_response",
        path="/0/public/AssetPairs",
        body=b'{"error":["EGeneral:Internal error"],"result":{}}',
    )
    urls = venues.urls
    code, out, err = await ssmd(
        "kraken",
        "sync",
        "--url",
        urls["kraken"],
        "--futures-url",
        urls["kraken-futures"],
        "--attempts",
        "1",
        env={"DATABASE_URL": migrated},
    )
    assert code == 1 and "pairs" in out
    assert err.count("ssmd: error: ") == 1 and "EGeneral:Internal error" in err


@pytest.mark.integration
async def test_schedule_runs_and_logs(migrated: str, venues: Venues) -> None:
    urls = venues.urls
    code, _, err = await ssmd(
        "secmaster",
        "run",
        "--interval",
        "1s",
        "--runs",
        "1",
        "--venue",
        "kraken",
        "--venue",
        "polymarket",
        env={
            "DATABASE_URL": migrated,
            "SSMD_KRAKEN_REST_URL": urls["kraken"],
            "SSMD_KRAKEN_FUTURES_REST_URL": urls["kraken-futures"],
            "SSMD_POLYMARKET_GAMMA_URL": urls["polymarket"],
            "SSMD_KRAKEN_RATE": "0",
        },
    )
    assert code == 0, err
    assert "sync kraken done in" in err and "sync polymarket done in" in err
    code, _, err = await ssmd("secmaster", "run", "--interval", "soon")
    one_line_error(code, err, "bad duration")


async def _runs_until_the_database(argv: list[str]) -> str:
    """Run ``argv`` for real with the database on a closed port; "" when ssmd took the
    command line and went as far as connecting, else what it said instead."""
    dsn = f"postgresql://ssmd@127.0.0.1:{_closed_port()}/ssmd"
    code, _, err = await ssmd(*argv, env={"DATABASE_URL": dsn})
    wanted = f"ssmd: error: cannot connect to PostgreSQL at {dsn}"
    if code == 1 and err.count("\n") == 1 and err.startswith(wanted):  # 1: unreachable
        return ""
    return f"exit {code}: {err.strip()}"


async def test_k8s_manifests_run_real_commands() -> None:
    """Every ``args:`` of deploy/k8s/secmaster is a command line ssmd accepts and runs.

    Each runs for real (not ``--help``, which would accept any flag value):
    flags are parsed and checked, and the command goes as far as connecting
    to its database, which is on a closed port here.
    """
    root = Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "secmaster"
    argvs = [
        json.loads(line.split("args:", 1)[1])
        for f in sorted(root.glob("*.yaml"))
        for line in f.read_text().splitlines()
        if line.strip().startswith("args:")
    ]
    assert len(argvs) >= 4
    for argv in argvs:
        assert await _runs_until_the_database(argv) == "", argv
    # the check itself can fail: a bad value or an unknown flag is caught
    for bad in (
        ["secmaster", "sync", "--rate", "notanumber"],
        ["secmaster", "sync", "--catgory", "Economics"],
        ["secmaster", "sync", "--status", "opne"],
        ["db", "migrat"],
    ):
        assert await _runs_until_the_database(bad) != "", bad


@pytest.mark.integration
async def test_database_error_mid_command_is_one_line(migrated: str, venues: Venues) -> None:
    conn = await db.connect(migrated)
    try:
        await conn.execute("DROP VIEW instruments; DROP TABLE pairs")
    finally:
        await conn.close()
    env = {"DATABASE_URL": migrated}
    code, _, err = await ssmd("secmaster", "search", "btc", env=env)
    one_line_error(code, err, 'PostgreSQL error during the query: relation "instruments"', expect=1)
    urls = venues.urls
    code, _, err = await ssmd(
        "kraken", "sync", "--url", urls["kraken"], "--futures-url", urls["kraken-futures"], env=env
    )
    one_line_error(code, err, "PostgreSQL error during the kraken sync", expect=1)
