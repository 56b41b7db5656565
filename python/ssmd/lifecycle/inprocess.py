"""The lifecycle consumer on the in-process bus, as ``ssmd demo`` runs it.

A capture in this process publishes to a :class:`~ssmd.bus.memory.MemoryBus`
(:class:`~ssmd.bus.local.LocalPipeline`); :class:`InProcessLifecycle` runs
:meth:`LifecycleService.run_in_process` on that bus beside it and, when the
capture ended, lets it apply what is left before stopping it.

The demo's events are simulated, so they never go into the secmaster's own
tables: :func:`prepare_schema` gives the demo a schema of its own in the
database (``ssmd_demo``, dropped and created again by every run, and only if
ssmd demo made it) with the secmaster's tables migrated into it, and a DSN
whose ``search_path`` is that schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ssmd.errors import ConfigError
from ssmd.lifecycle.service import LifecycleService, LifecycleStats

__all__ = ["DEMO_SCHEMA", "InProcessLifecycle", "prepare_schema", "with_search_path"]

#: the schema ``ssmd demo`` writes its simulated secmaster and lifecycle events to
DEMO_SCHEMA = "ssmd_demo"
#: the comment that marks the schema as ssmd demo's own (so a run may drop it)
_MARK = "made by ssmd demo; dropped and created again by every run"


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` with ``search_path`` set to ``schema`` (a server setting asyncpg passes on)."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


async def prepare_schema(dsn: str, schema: str = DEMO_SCHEMA) -> str:
    """Drop and create ``schema`` (only one ssmd demo made), migrate it; its DSN."""
    from ssmd.secmaster import db

    conn = await db.connect(dsn)
    try:
        async with db.database_errors(f"preparing schema {schema}"):
            comment = await conn.fetchval(
                "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
                schema,
            )
            exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
            if exists and comment != _MARK:
                raise ConfigError(
                    f"schema {schema} exists in the database and was not made by ssmd demo:"
                    " ssmd demo will not drop it (rename it, or run the demo against another"
                    " database)"
                )
            async with conn.transaction():
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.execute(f'CREATE SCHEMA "{schema}"')
                await conn.execute(f"COMMENT ON SCHEMA \"{schema}\" IS '{_MARK}'")
    finally:
        await conn.close()
    scoped = with_search_path(dsn, schema)
    conn = await db.connect(scoped)
    try:
        async with db.database_errors(f"migrating schema {schema}"):
            await db.migrate(conn)
    finally:
        await conn.close()
    return scoped


class InProcessLifecycle:
    """The lifecycle consumer on ``bus`` (its Kalshi stream), in a task of this process."""

    def __init__(self, dsn: str, bus: Any, *, env: str = "prod") -> None:
        self.service = LifecycleService(dsn, env=env, durable="lifecycle")
        self.bus = bus
        self._stop = asyncio.Event()
        self._task: asyncio.Task[LifecycleStats] | None = None

    async def start(self) -> None:
        """Start consuming; returns once the consumer reads the bus (or raises its error)."""
        self._task = asyncio.create_task(
            self.service.run_in_process(self.bus, self._stop), name="ssmd-lifecycle"
        )
        started = asyncio.create_task(self.service.started.wait())
        await asyncio.wait({self._task, started}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            started.cancel()
            await self._task  # its error

    async def finish(self, timeout: float = 30.0) -> LifecycleStats:
        """Let it apply what the bus holds (up to ``timeout`` s), then stop it."""
        task = self._task
        assert task is not None, "start() first"
        deadline = time.monotonic() + timeout
        while not task.done() and time.monotonic() < deadline:
            if await self.service.caught_up():
                break
            await asyncio.sleep(0.05)
        self._stop.set()
        return await task

    async def cancel(self) -> None:
        """Stop it without waiting for the rest (the capture failed)."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await self._task
