"""``ssmd db migrate``: numbered migrations, recorded, idempotent, safe to run concurrently."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from ssmd.errors import ConfigError
from ssmd.secmaster import db

pytestmark = pytest.mark.integration

TABLES = {
    "series",
    "events",
    "markets",
    "series_fees",
    "pairs",
    "polymarket_conditions",
    "polymarket_tokens",
    "market_lifecycle_events",
    "schema_migrations",
}


def test_packaged_migrations_are_numbered() -> None:
    migs = db.load_migrations()
    assert migs and migs[0].version == 1
    assert [m.version for m in migs] == sorted({m.version for m in migs})


async def test_migrate_creates_schema_and_is_idempotent(pg_dsn: str) -> None:
    conn = await db.connect(pg_dsn)
    try:
        first = await db.migrate(conn)
        assert [m.version for m in first] == [m.version for m in db.load_migrations()]
        second = await db.migrate(conn)
        assert second == []
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert tables >= TABLES
        views = await conn.fetch("SELECT viewname FROM pg_views WHERE schemaname='public'")
        assert {r["viewname"] for r in views} == {"instruments"}
        rows = await conn.fetch("SELECT version, name, sha256 FROM schema_migrations")
        assert len(rows) == len(first)
        for table in TABLES - {"schema_migrations", "market_lifecycle_events"}:
            cols = {
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name=$1", table
                )
            }
            assert {"raw", "updated_at", "status", "delisted_at"} <= cols, table
        # the view is read-only
        with pytest.raises(Exception, match="instruments"):
            await conn.execute("DELETE FROM instruments")
        await db.check_schema(conn)
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_once(pg_dsn: str) -> None:
    conns = [await db.connect(pg_dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.migrate(c) for c in conns))
        applied = [len(r) for r in results]
        assert sorted(applied) == [0, 0, 0, len(db.load_migrations())]
        n = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert n == len(db.load_migrations())
    finally:
        for c in conns:
            await c.close()


async def test_changed_migration_is_refused(pg_dsn: str) -> None:
    conn = await db.connect(pg_dsn)
    try:
        migs = db.load_migrations()
        await db.migrate(conn, migs)
        edited = [dataclasses.replace(migs[0], sql=migs[0].sql + "\n-- edited\n"), *migs[1:]]
        with pytest.raises(ConfigError, match="changed after it was applied"):
            await db.migrate(conn, edited)
    finally:
        await conn.close()


async def test_unmigrated_database_is_a_clear_error(pg_dsn: str) -> None:
    conn = await db.connect(pg_dsn)
    try:
        with pytest.raises(ConfigError, match="ssmd db migrate"):
            await db.check_schema(conn)
    finally:
        await conn.close()
