"""``ssmd demo`` with a database: the lifecycle consumer on the in-process bus.

Real PostgreSQL; no NATS: Kalshi's capture goes through the in-process bus,
and the lifecycle consumer in the same process applies every lifecycle line
the capture archived to the demo's own schema (``ssmd_demo``), never to the
secmaster's tables of that database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssmd.archive import iter_lines

pytestmark = pytest.mark.integration


def _demo(dsn: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "ssmd", "demo", "--venue", "kalshi", "--duration", "3s"),
            *("--rate", "2000", "--dir", str(root), "--json", "--database-url", dsn),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NATS_URL": "", "DATABASE_URL": ""},
    )


async def test_demo_applies_kalshi_lifecycle_events_from_the_in_process_bus(
    pg_dsn: str, tmp_path: Path
) -> None:
    from ssmd.secmaster import db

    conn = await db.connect(pg_dsn)
    try:
        await db.migrate(conn)  # the database's own secmaster, which the demo must not touch
        for run in (1, 2):  # a second run starts from a fresh demo schema
            root = tmp_path / f"run{run}"
            r = _demo(pg_dsn, root)
            assert r.returncode == 0, r.stderr
            life = json.loads(r.stdout)["lifecycle"]
            assert life["ran"] and life["schema"] == "ssmd_demo", life
            archived = sum(1 for _ in iter_lines(root, "kalshi", kinds=["lifecycle"]))
            # every lifecycle line the capture archived was applied once, none lost
            assert archived > 0 and life["events"] == archived, (life, archived)
            assert life["outcomes"].get("applied", 0) > 0, life  # markets synced from the sim
            assert "duplicate" not in life["outcomes"] and life["deadletters"] == 0, life
            rows = await conn.fetchval("SELECT count(*) FROM ssmd_demo.market_lifecycle_events")
            assert rows == archived
        assert await conn.fetchval("SELECT count(*) FROM public.market_lifecycle_events") == 0
        assert await conn.fetchval("SELECT count(*) FROM public.markets") == 0
        # a schema of that name that ssmd demo did not make is left alone
        await conn.execute("DROP SCHEMA ssmd_demo CASCADE; CREATE SCHEMA ssmd_demo")
        await conn.execute("CREATE TABLE ssmd_demo.keep (x int)")
        r = _demo(pg_dsn, tmp_path / "run3")
        assert r.returncode == 2, r.stderr
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and "was not made by ssmd demo" in err[0], err
        assert await conn.fetchval("SELECT to_regclass('ssmd_demo.keep') IS NOT NULL")
    finally:
        await conn.close()
