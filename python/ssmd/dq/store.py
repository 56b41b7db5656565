"""``dq_daily_scores`` in PostgreSQL (migration 0003): one row per day, venue and check."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from ssmd.secmaster.db import connect, database_errors, migrate

__all__ = ["store_score", "write_scores"]

_UPSERT = """
INSERT INTO dq_daily_scores (check_date, venue, "check", score, details)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (check_date, venue, "check") DO UPDATE
SET score = EXCLUDED.score, details = EXCLUDED.details, updated_at = now()
"""


async def write_scores(
    conn: Any, date: dt.date, check: str, scores: Iterable[tuple[str, float, dict[str, Any]]]
) -> None:
    """Upsert ``(venue, score, details)`` rows of one check and day, in one transaction."""
    rows = [
        (date, venue, check, score, json.dumps(details, default=str))
        for venue, score, details in scores
    ]
    async with conn.transaction():
        await conn.executemany(_UPSERT, rows)


async def store_score(
    dsn: str, date: dt.date, venue: str, check: str, score: float, details: dict[str, Any]
) -> None:
    """Upsert one score (migrating the database first, as every ssmd writer does)."""
    async with database_errors("storing the dq score"):
        conn = await connect(dsn)
        try:
            await migrate(conn)
            await write_scores(conn, date, check, [(venue, score, details)])
        finally:
            await conn.close()
