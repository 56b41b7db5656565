"""Venue syncs into the secmaster, and the runner that schedules them on connections.

Each :class:`Job` runs on its own database connection and holds a session
advisory lock named after it (``ssmd.sync:<name>``) while it runs, so two
runs of the same sync never overlap (the second is skipped and says so).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssmd.errors import ConfigError, SsmdError
from ssmd.secmaster import db
from ssmd.secmaster.config import SYNCS, SecmasterSettings
from ssmd.secmaster.sync.base import NullProgress, Progress, SyncResult, TableStats
from ssmd.secmaster.sync.kalshi import sync_kalshi
from ssmd.secmaster.sync.kraken import sync_kraken
from ssmd.secmaster.sync.polymarket import sync_polymarket

__all__ = [
    "RUNNERS",
    "Job",
    "SyncResult",
    "TableStats",
    "run_job",
    "run_jobs",
    "sync_kalshi",
    "sync_kraken",
    "sync_polymarket",
]


@dataclass(frozen=True, slots=True)
class Job:
    """One sync: ``kalshi`` (optionally some categories / one status), ``kraken`` or ``polymarket``."""

    venue: str
    categories: tuple[str, ...] = field(default=())
    status: str | None = None

    def __post_init__(self) -> None:
        if self.venue not in SYNCS:
            raise ConfigError(f"unknown sync {self.venue!r} (one of: {', '.join(SYNCS)})")

    @property
    def name(self) -> str:
        if self.venue != "kalshi" or not (self.categories or self.status):
            return self.venue
        parts = [",".join(self.categories)] if self.categories else []
        if self.status:
            parts.append(f"status={self.status}")
        return f"kalshi:{';'.join(parts)}"


async def _locked(conn: Any, name: str) -> bool:
    got: bool = await conn.fetchval(
        "SELECT pg_try_advisory_lock(hashtext('ssmd.sync:' || $1))", name
    )
    return got


async def run_job(
    settings: SecmasterSettings, job: Job, progress: Progress | None = None
) -> SyncResult:
    """Run one sync on its own connection, under its advisory lock."""
    progress = progress or NullProgress()
    conn = await db.connect(settings.database_url)
    try:
        async with db.database_errors(f"the {job.name} sync"):
            return await _run_locked(conn, settings, job, progress)
    finally:
        await conn.close()


async def _kalshi(
    conn: Any, settings: SecmasterSettings, job: Job, progress: Progress
) -> SyncResult:
    return await sync_kalshi(
        conn,
        settings.api("kalshi"),
        categories=job.categories,
        status=job.status,
        progress=progress,
        flush_rows=settings.flush_rows,
        name=job.name,
    )


async def _kraken(
    conn: Any, settings: SecmasterSettings, job: Job, progress: Progress
) -> SyncResult:
    return await sync_kraken(
        conn,
        settings.api("kraken"),
        settings.api("kraken-futures"),
        progress=progress,
        flush_rows=settings.flush_rows,
    )


async def _polymarket(
    conn: Any, settings: SecmasterSettings, job: Job, progress: Progress
) -> SyncResult:
    return await sync_polymarket(
        conn, settings.api("polymarket"), progress=progress, flush_rows=settings.flush_rows
    )


#: what runs each sync of :data:`~ssmd.secmaster.config.SYNCS` (every one has an entry)
RUNNERS: dict[str, Callable[[Any, SecmasterSettings, Job, Progress], Awaitable[SyncResult]]] = {
    "kalshi": _kalshi,
    "kraken": _kraken,
    "polymarket": _polymarket,
}


async def _run_locked(
    conn: Any, settings: SecmasterSettings, job: Job, progress: Progress
) -> SyncResult:
    await db.check_schema(conn)
    if not await _locked(conn, job.name):
        return SyncResult(
            job.name, errors=[f"another {job.name} sync is running (advisory lock held)"]
        )
    try:
        return await RUNNERS[job.venue](conn, settings, job, progress)
    finally:
        if not conn.is_closed():
            with contextlib.suppress(Exception):  # the session lock ends with the session anyway
                await conn.execute(
                    "SELECT pg_advisory_unlock(hashtext('ssmd.sync:' || $1))", job.name
                )


async def run_jobs(
    settings: SecmasterSettings, jobs: Sequence[Job], progress: Progress | None = None
) -> list[SyncResult]:
    """Run the syncs side by side (one connection each); results in ``jobs`` order.

    A sync that fails as a whole (unreachable venue or database) becomes a
    result carrying that error; the others still run to the end.
    """
    done = await asyncio.gather(
        *(run_job(settings, j, progress) for j in jobs), return_exceptions=True
    )
    results: list[SyncResult] = []
    for job, res in zip(jobs, done, strict=True):
        if isinstance(res, SsmdError):
            results.append(SyncResult(job.name, errors=[str(res)]))
        elif isinstance(res, BaseException):
            raise res
        else:
            results.append(res)
    return results
