"""Fixtures of the secmaster tests: the venue simulators' REST and a migrated database."""

from __future__ import annotations

import pytest

from secmaster_venues import Venues, start_venues
from sim_client import MakeSim
from ssmd.secmaster import db


@pytest.fixture
async def venues(make_sim: MakeSim) -> Venues:
    """Every venue's simulator (stopped at teardown by ``make_sim``)."""
    return await start_venues(make_sim)


@pytest.fixture
async def migrated(pg_dsn: str) -> str:
    """``pg_dsn`` with every secmaster migration applied."""
    conn = await db.connect(pg_dsn)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    return pg_dsn
