"""``ssmd dq secmaster`` on a real PostgreSQL: a clean secmaster and archive day score
100, then one planted defect per check is found (and named), and the scores land in
dq_daily_scores (one row per venue and one for all)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from archive_helpers import SEC, T0, envelope
from ssmd.archive import ArchiveWriter
from ssmd.secmaster.db import migrate

pytestmark = pytest.mark.integration

DAY = "2024-03-01"


def _run(root: Path, dsn: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSMD_ARCHIVE_DIR", "DATABASE_URL")}
    env["DATABASE_URL"] = dsn
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ssmd",
            "dq",
            "secmaster",
            "--dir",
            str(root),
            "--date",
            DAY,
            *extra,
        ],
        capture_output=True,
        env=env,
        timeout=60,
    )


def _report(root: Path, dsn: str) -> dict[str, Any]:
    r = _run(root, dsn, "--json")
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def _checks(report: dict[str, Any], venue: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["venues"][venue]["checks"]}


async def _sql(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


async def _fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


CLEAN = (
    "INSERT INTO series (ticker, category, raw) VALUES ('KX', 'Crypto', '{}')",
    "INSERT INTO events (event_ticker, series_ticker, raw) VALUES ('KX-E', 'KX', '{}')",
    "INSERT INTO markets (ticker, event_ticker, status, title, open_time, close_time, tick_size,"
    " raw) VALUES"
    " ('KX-A', 'KX-E', 'active', 'A', '2024-01-01Z', '2030-01-01Z', 0.01, '{}'),"
    " ('KX-B', 'KX-E', 'active', 'B', '2024-01-01Z', '2030-01-01Z', 0.01, '{}'),"
    " ('KX-OLD', 'KX-E', 'finalized', 'Old', '2023-01-01Z', '2023-02-01Z', 0.01, '{}')",
    "INSERT INTO pairs (pair, market_type, symbol, wsname, status, tick_size, price_precision,"
    " qty_precision, raw) VALUES"
    " ('XXBTZUSD', 'spot', 'BTC/USD', 'XBT/USD', 'online', 0.1, 1, 8, '{}')",
    "INSERT INTO pairs (pair, market_type, symbol, status, tick_size, contract_size, raw) VALUES"
    " ('PF_XBTUSD', 'perpetual', 'PF_XBTUSD', 'online', 0.5, 1, '{}')",
    "INSERT INTO polymarket_conditions (condition_id, question, end_date, tick_size, status, raw)"
    " VALUES ('0xc1', 'Will it?', '2030-01-01Z', 0.01, 'active', '{}')",
    "INSERT INTO polymarket_tokens (token_id, condition_id, outcome, outcome_index, raw) VALUES"
    " ('111', '0xc1', 'Yes', 0, '{}'), ('222', '0xc1', 'No', 1, '{}')",
)


def _archive(root: Path, venue: str, writer: str, subjects: list[str]) -> None:
    with ArchiveWriter(root, venue, writer, fsync=False) as w:
        for i, subj in enumerate(subjects):
            w.write(envelope(T0 + i * SEC, subj, '{"type":"x"}'))


def _clean_archive(root: Path) -> None:
    _archive(
        root,
        "kalshi",
        "w",
        [
            "prod.kalshi.crypto.json.trade.KX-A",
            "prod.kalshi.crypto.json.ticker.KX-B",
            "prod.kalshi.crypto.json.lifecycle.KX-E",  # an event_lifecycle line: its event
            "prod.kalshi.json.status.ka-host-1-0",  # a connection, not an instrument
        ],
    )
    _archive(root, "kraken", "w", ["prod.kraken.json.book.BTC_USD"])
    _archive(root, "kraken-futures", "w", ["prod.kraken-futures.json.trade.PF_XBTUSD"])
    _archive(root, "polymarket", "w", ["prod.polymarket.json.book.0xc1"])


def test_clean_then_one_defect_per_check(tmp_path: Path, pg_dsn: str) -> None:
    _clean_archive(tmp_path)
    asyncio.run(_sql(pg_dsn, *CLEAN))
    clean = _report(tmp_path, pg_dsn)
    assert clean["score"] == 100.0, clean
    assert set(clean["venues"]) == {"kalshi", "kraken", "kraken-futures", "polymarket"}
    assert _checks(clean, "kalshi")["rows"]["value"] == 3
    assert clean["stats"]["rows"]["kalshi"] == {"active": 2, "finalized": 1}
    assert clean["stats"]["archive"]["venues"]["kalshi"] == {"instruments": 3, "lines": 3}

    # one defect per check
    asyncio.run(
        _sql(
            pg_dsn,
            # missing fields: a Kraken pair without the precisions its checksums need,
            # a Polymarket condition without tokens
            "INSERT INTO pairs (pair, market_type, symbol, wsname, status, tick_size, raw) VALUES"
            " ('XETHZUSD', 'spot', 'ETH/USD', 'ETH/USD', 'online', 0.01, '{}')",
            "INSERT INTO polymarket_conditions (condition_id, question, end_date, tick_size,"
            " status, raw) VALUES ('0xc2', 'Tokens?', '2030-01-01Z', 0.01, 'active', '{}')",
            # past close, still active
            "INSERT INTO markets (ticker, event_ticker, status, title, open_time, close_time,"
            " tick_size, raw) VALUES ('KX-LATE', 'KX-E', 'active', 'Late', '2024-01-01Z',"
            " now() - interval '2 days', 0.01, '{}')",
            # stale: Kraken Futures rows unchanged for 30 days
            "UPDATE pairs SET updated_at = now() - interval '30 days'"
            " WHERE market_type = 'perpetual'",
        )
    )
    # in the archive, not in the secmaster
    _archive(tmp_path, "kalshi", "w2", ["prod.kalshi.crypto.json.trade.KX-GHOST"] * 2)
    report = _report(tmp_path, pg_dsn)
    assert report["score"] < 100.0

    kalshi, kraken = _checks(report, "kalshi"), _checks(report, "kraken")
    futures, poly = _checks(report, "kraken-futures"), _checks(report, "polymarket")

    assert kraken["missing_fields"]["value"] == 1
    assert "price_precision 1" in kraken["missing_fields"]["detail"]
    assert "XETHZUSD" in kraken["missing_fields"]["detail"]
    assert poly["missing_fields"]["value"] == 1
    assert report["stats"]["missing_fields"]["polymarket"] == {"tokens": 1}
    assert kalshi["missing_fields"]["value"] == 0

    assert kalshi["past_close"]["value"] == 1
    assert "KX-LATE" in kalshi["past_close"]["detail"]
    assert poly["past_close"]["value"] == 0

    assert kalshi["not_in_secmaster"]["value"] == 1
    assert report["stats"]["examples"]["not_in_secmaster"]["kalshi"] == [
        {"id": "KX-GHOST", "lines": 2}
    ]
    assert kraken["not_in_secmaster"]["value"] == 0  # BTC/USD is archived as BTC_USD

    # ETH/USD and 0xc2 trade that day and have no archive line; KX-LATE closed
    # after the day, so it counts too
    assert kraken["not_in_archive"]["value"] == 1
    assert poly["not_in_archive"]["value"] == 1
    assert report["stats"]["examples"]["not_in_archive"]["kalshi"] == ["KX-LATE"]

    assert futures["sync_age"]["value"] == 1
    assert "stale" in futures["sync_age"]["detail"]
    assert kalshi["sync_age"]["value"] == 0
    assert futures["sync_age"]["score"] == 0.0

    overall = {c["name"]: c for c in report["checks"]}
    assert {k: overall[k]["value"] for k in overall} == {
        "rows": 9,
        "missing_fields": 2,
        "past_close": 1,
        "not_in_secmaster": 1,
        "not_in_archive": 3,
        "sync_age": 1,
    }

    rows = asyncio.run(
        _fetch(pg_dsn, 'SELECT venue, "check", score, details FROM dq_daily_scores ORDER BY venue')
    )
    assert [(r["venue"], r["check"]) for r in rows] == [
        ("all", "secmaster"),
        ("kalshi", "secmaster"),
        ("kraken", "secmaster"),
        ("kraken-futures", "secmaster"),
        ("polymarket", "secmaster"),
    ]
    assert rows[0]["score"] == report["score"]
    assert rows[3]["score"] == report["venues"]["kraken-futures"]["score"] < 100.0

    # the table, and --fail-under
    r = _run(tmp_path, pg_dsn, "--fail-under", "99.9")
    assert r.returncode == 1
    assert b"is under 99.9" in r.stderr
    table = r.stdout.decode()
    assert table.startswith(f"secmaster {DAY}: score ")
    assert "KX-GHOST" in table and "KX-LATE" in table


def test_bad_input_is_one_line(tmp_path: Path, pg_dsn: str) -> None:
    r = _run(tmp_path, pg_dsn, "--max-sync-age", "soon")
    assert r.returncode == 2
    assert r.stderr.decode().strip().count("\n") == 0
    assert "--max-sync-age" in r.stderr.decode()
    # no archive at all: the secmaster's own checks still run, the archive ones say why not
    report = _report(tmp_path / "nowhere", pg_dsn)
    overall = {c["name"]: c for c in report["checks"]}
    assert overall["not_in_archive"]["weight"] == 0.0
    assert "archive directory not found" in overall["not_in_secmaster"]["detail"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    r = subprocess.run(
        [sys.executable, "-m", "ssmd", "dq", "secmaster", "--dir", str(tmp_path)],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2
    assert b"DATABASE_URL" in r.stderr and b"Traceback" not in r.stderr
