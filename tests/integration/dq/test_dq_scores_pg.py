"""``ssmd dq trades`` with DATABASE_URL: the score lands in dq_daily_scores (migration
0003), and a re-run of the same check and day replaces its row."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from archive_helpers import SEC, T0, envelope
from ssmd.archive import ArchiveWriter

pytestmark = pytest.mark.integration

TRADE = (
    '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":%s,'
    '"qty":0.5,"ord_type":"limit","trade_id":%d,"timestamp":"2024-03-01T00:00:%02d.000000Z"}]}'
)


def _run(root: Path, dsn: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"}
    env["DATABASE_URL"] = dsn
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ssmd",
            "dq",
            "trades",
            "--dir",
            str(root),
            "--exchange",
            "kraken",
            "--ticker",
            "BTC/USD",
            "--date",
            "2024-03-01",
            "--json",
        ],
        capture_output=True,
        env=env,
        timeout=60,
    )


async def _rows(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            'SELECT check_date, venue, "check", score, details FROM dq_daily_scores'
        )
    finally:
        await conn.close()


def test_scores_are_stored_and_replaced(tmp_path: Path, pg_dsn: str) -> None:
    with ArchiveWriter(tmp_path, "kraken", "w", fsync=False) as w:
        for i in range(20):
            w.write(
                envelope(
                    T0 + i * SEC, "prod.kraken.json.trade.BTC_USD", TRADE % (f"{6e4 + i}", i, i)
                )
            )
    r = _run(tmp_path, pg_dsn)
    assert r.returncode == 0, r.stderr
    (row,) = asyncio.run(_rows(pg_dsn))
    assert (str(row["check_date"]), row["venue"], row["check"], row["score"]) == (
        "2024-03-01",
        "kraken",
        "trades:BTC/USD",
        100.0,
    )
    assert json.loads(row["details"])["stats"]["trades"] == 20
    with ArchiveWriter(tmp_path, "kraken", "w2", fsync=False) as w:  # the same trade again
        w.write(envelope(T0 + 30 * SEC, "prod.kraken.json.trade.BTC_USD", TRADE % ("60000", 3, 30)))
    assert _run(tmp_path, pg_dsn).returncode == 0
    (row,) = asyncio.run(_rows(pg_dsn))
    assert row["score"] < 100.0
