"""Fixtures of the secmaster tests: the local venue server and a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from secmaster_server import Venues, start_venues

from ssmd.secmaster import db
from ssmd.secmaster.config import SecmasterSettings


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


def make_settings(dsn: str | None, venues: Venues, attempts: int = 3) -> SecmasterSettings:
    """Settings pointing every venue at the local server, unthrottled."""
    rates: dict[str, float | None] = {v: 0.0 for v in venues.urls}
    s = SecmasterSettings.load(
        {}, database_url=dsn, urls=dict(venues.urls), rates=rates, attempts=attempts
    )
    return s
