"""Fixtures of the secmaster tests: the local venue server and a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from secmaster_server import Venues, start_venues
from ssmd.secmaster import db


@pytest.fixture
async def venues() -> AsyncIterator[Venues]:
    v = await start_venues()
    try:
        yield v
    finally:
        await v.server.close()


@pytest.fixture
async def migrated(pg_dsn: str) -> str:
    """``pg_dsn`` with every secmaster migration applied."""
    conn = await db.connect(pg_dsn)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    return pg_dsn
