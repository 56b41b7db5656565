"""The secmaster as the source of instrument resolution (docs/secmaster.md).

With ``DATABASE_URL`` set (``ConnectorConfig.database_url``), ``ssmd
connect`` resolves names, categories and ``--all`` through the secmaster's
tables instead of the venue's REST API: each venue's
``symbols.from_secmaster`` reads them through a :class:`SecmasterReader` and
returns the same :class:`~ssmd.connectors.base.Resolution` as its REST
``discover`` for the same universe.

The connection is opened on the first query, so explicit ids that need no
lookup (Kraken Futures product ids, Polymarket token ids) need no database
either. Every failure (a malformed URL, an unreachable server, a schema
that is not migrated, an SQL error) is a one-line
:class:`~ssmd.errors.ConfigError` that names the problem and never the
password.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from ssmd.errors import ConfigError, SsmdError

__all__ = ["SecmasterReader"]

log = logging.getLogger("ssmd.connect")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SecmasterReader:
    """Read-only queries on the secmaster for one venue's resolution."""

    def __init__(self, venue: str, dsn: str) -> None:
        self.venue = venue
        self._dsn = dsn
        self._conn: Any = None
        #: whether a query reached the database (explicit ids may need none)
        self.used = False
        #: the server's WAL position just before the first query
        self.lsn: int | None = None

    @property
    def where(self) -> str:
        """The database URL without its password, for logs and messages."""
        from ssmd.secmaster.db import redact

        return redact(self._dsn)

    def _error(self, reason: str) -> ConfigError:
        return ConfigError(f"{self.venue}: secmaster: {reason}")

    async def _connection(self) -> Any:
        if self._conn is not None:
            return self._conn
        from ssmd.secmaster import db

        try:
            conn = await db.connect(self._dsn)
        except SsmdError as exc:  # unreachable, refused, no such database, not postgresql://
            raise self._error(str(exc)) from None
        except ValueError as exc:  # asyncpg's own DSN parsing (a bad port, a bad host)
            reason = _first_line(exc)
            try:
                password = urlsplit(self._dsn).password
            except ValueError:
                password = None
            if password and password in reason:
                reason = "malformed"
            raise self._error(f"DATABASE_URL {self.where} is not a valid URL: {reason}") from None
        try:
            await db.check_schema(conn)
        except SsmdError as exc:  # "run `ssmd db migrate` first"
            await conn.close()
            raise self._error(str(exc)) from None
        except Exception as exc:
            await conn.close()
            raise self._error(
                f"cannot read the schema at {self.where}: {_first_line(exc)}"
            ) from None
        log.debug("%s: secmaster connected at %s", self.venue, self.where)
        # every change committed before this position is visible to the queries that follow;
        # the CDC stream carries the ones after it (a follower applies those)
        self.lsn = int(await conn.fetchval("SELECT pg_current_wal_lsn()"))
        self._conn = conn
        return conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """Rows of one query (asyncpg records: ``row["column"]``)."""
        conn = await self._connection()
        self.used = True
        import asyncpg  # type: ignore[import-untyped]

        try:
            return list(await conn.fetch(sql, *args))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise self._error(f"query failed at {self.where}: {_first_line(exc)}") from None

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def __aenter__(self) -> SecmasterReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
