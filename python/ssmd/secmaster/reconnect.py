"""A service's PostgreSQL connection that rides out a server restart.

``ssmd cdc run``, ``ssmd cache run`` and ``ssmd lifecycle run`` hold one
connection each. PostgreSQL going away under them (a restart, a crash, the
backend terminated) is an outage, not an error: :class:`PgSession` logs it
once when it starts and once when it ends, reconnects with
:class:`~ssmd.runtime.backoff.Backoff` in between, and runs the interrupted
operation again on the new connection. The operations are made so that
running one again changes nothing (an event's dedupe key, a fenced cache
write).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ssmd.errors import SinkError

__all__ = ["PgSession", "StoppedInOutage", "connection_lost", "first_line"]

T = TypeVar("T")


class StoppedInOutage(Exception):
    """The service was asked to stop while PostgreSQL was away: nothing more to do."""


def connection_lost() -> tuple[type[BaseException], ...]:
    """The errors that mean PostgreSQL went away (restart, crash, backend terminated).

    A socket error, a closed connection, class 08 (connection exception) and
    the shutdown errors of class 57 (``57P01`` admin shutdown, ``57P02`` crash
    shutdown, ``57P03`` cannot connect now): the server is worth reconnecting
    to. A query canceled (``57014``) or any other error is not an outage.
    """
    import asyncpg  # type: ignore[import-untyped]

    return (
        OSError,
        asyncio.TimeoutError,
        asyncpg.InterfaceError,
        asyncpg.PostgresConnectionError,
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        asyncpg.CannotConnectNowError,
        # a FATAL error sent to an idle connection (its backend terminated) can leave the
        # protocol consuming it when the next query starts: that query raises this
        asyncpg.InternalClientError,
    )


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PgSession:
    """One PostgreSQL connection of a service, replaced after an outage.

    :meth:`open` connects (a failure is the one-line error of
    :func:`ssmd.secmaster.db.connect`). :meth:`call` runs ``op(conn)``; when
    the connection is lost, it logs the outage, reconnects with backoff
    (0.1 s doubling to 5 s, full jitter) until PostgreSQL is back or ``stop``
    is set (then :class:`StoppedInOutage`), and runs ``op`` again.
    ``on_connect`` runs on every new connection (a schema check, say).
    """

    def __init__(
        self,
        dsn: str,
        name: str,
        *,
        on_connect: Callable[[Any], Awaitable[None]] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.dsn = dsn
        self.name = name
        self.on_connect = on_connect
        self.log = logger or logging.getLogger(f"ssmd.{name}")
        self.conn: Any = None
        self.outages = 0
        self.outage_seconds = 0.0

    async def open(self) -> Any:
        self.conn = await self._connect()
        return self.conn

    async def _connect(self) -> Any:
        from ssmd.secmaster.db import connect

        conn = await connect(self.dsn)
        if self.on_connect is not None:
            try:
                await self.on_connect(conn)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
        return conn

    async def call(self, op: Callable[[Any], Awaitable[T]], stop: asyncio.Event) -> T:
        """``op(conn)``, run again on a new connection after PostgreSQL went away."""
        lost = connection_lost()
        while True:
            try:
                return await op(self.conn)
            except lost as exc:
                await self._reconnect(exc, stop)

    async def _reconnect(self, exc: BaseException, stop: asyncio.Event) -> None:
        from ssmd.runtime.backoff import Backoff

        retry: tuple[type[BaseException], ...] = (SinkError, *connection_lost())
        self.outages += 1
        began = time.monotonic()
        self.log.warning(
            "%s: lost PostgreSQL (%s); reconnecting with backoff", self.name, first_line(exc)
        )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.conn.close(), 5)
        backoff = Backoff(base=0.1, cap=5.0)
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.next_delay())
            if stop.is_set():
                raise StoppedInOutage(f"{self.name}: stopped while PostgreSQL was away")
            try:
                self.conn = await self._connect()
            except retry as again:
                self.log.debug("%s: PostgreSQL still unreachable: %s", self.name, first_line(again))
                continue
            took = time.monotonic() - began
            self.outage_seconds += took
            self.log.warning(
                "%s: PostgreSQL is back after %.1fs (%d attempt(s))",
                self.name,
                took,
                backoff.attempt,
            )
            return

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.conn.close(), 5)
