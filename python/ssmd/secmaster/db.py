"""PostgreSQL access for the secmaster: connections, migrations, bulk upserts.

Migrations are the numbered SQL files in ``ssmd/secmaster/migrations``
(``0001_name.sql``, ...). :func:`migrate` applies the missing ones in order,
each in its own transaction, records them in ``schema_migrations`` (version,
name, sha256, applied_at) and holds a session advisory lock meanwhile, so
concurrent runs serialize and all but the first find nothing to do.

Writes go through :func:`upsert`: the rows are COPYed (binary) into a
temporary staging table, then one ``INSERT ... ON CONFLICT ... DO UPDATE ...
WHERE <row content differs>`` moves them, so unchanged rows are not written
at all (no new tuple, no WAL record, no CDC event).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from ssmd.errors import ConfigError, SinkError, SsmdError

__all__ = [
    "MIGRATION_LOCK",
    "Migration",
    "Table",
    "applied_migrations",
    "check_schema",
    "connect",
    "database_errors",
    "delist",
    "load_migrations",
    "migrate",
    "redact",
    "upsert",
]

log = logging.getLogger("ssmd.secmaster")

#: pg_advisory_lock key held while migrating ("ssmd" "migr" as two int32s).
MIGRATION_LOCK = 0x73736D64_6D696772
_CONNECT_TIMEOUT = 10.0
#: work_mem of the upsert transaction (its join hashes one batch of wide rows)
UPSERT_WORK_MEM = "64MB"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def redact(dsn: str) -> str:
    """``dsn`` without its password, for messages and logs."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparsable DATABASE_URL>"
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


async def connect(dsn: str | None) -> Any:
    """Open an asyncpg connection, turning every failure into a one-line ssmd error."""
    if not dsn:
        raise ConfigError("DATABASE_URL is not set (export it or pass --database-url)")
    if not dsn.startswith(("postgres://", "postgresql://")):
        raise ConfigError(f"DATABASE_URL must be a postgresql:// URL, got {redact(dsn)!r}")
    try:
        port = urlsplit(dsn).port  # a bad or out-of-range port raises ValueError
    except ValueError as exc:
        raise ConfigError(f"bad DATABASE_URL {redact(dsn)!r}: {exc}") from None
    if port == 0:
        raise ConfigError(f"bad DATABASE_URL {redact(dsn)!r}: port 0")
    error: BaseException | None = None
    try:
        return await asyncpg.connect(
            dsn, timeout=_CONNECT_TIMEOUT, server_settings={"temp_buffers": "64MB"}
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        error = exc
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise SinkError(f"cannot connect to PostgreSQL at {redact(dsn)}: {reason}")


@contextlib.asynccontextmanager
async def database_errors(what: str) -> AsyncIterator[None]:
    """Turn PostgreSQL and connection failures inside the block into one-line ssmd errors."""
    error: BaseException | None = None
    try:
        yield
    except SsmdError:
        raise  # already says what failed (a venue that cannot be reached is not PostgreSQL's)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        error = exc
    if error is not None:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SinkError(f"PostgreSQL error during {what}: {first}")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The packaged migrations, by version."""
    found: list[Migration] = []
    for entry in resources.files("ssmd.secmaster").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda x: x.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"two migrations share a version number: {versions}")
    return found


_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    sha256      text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


async def applied_migrations(conn: Any) -> dict[int, tuple[str, str]]:
    """version -> (name, sha256) of the migrations recorded in the database."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, name, sha256 FROM schema_migrations")
    return {r["version"]: (r["name"], r["sha256"]) for r in rows}


async def migrate(conn: Any, migrations: Sequence[Migration] | None = None) -> list[Migration]:
    """Apply the missing migrations in order; return those applied by this call.

    Safe to run concurrently: a session advisory lock serializes the runs. An
    applied migration whose file has changed since is an error, never re-run.
    """
    todo = list(load_migrations() if migrations is None else migrations)
    applied: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(_CREATE_LEDGER)
        done = await applied_migrations(conn)
        for mig in todo:
            if mig.version in done:
                name, digest = done[mig.version]
                if digest != mig.sha256:
                    raise ConfigError(
                        f"migration {mig.version:04d}_{name} was changed after it was applied"
                        " (write a new migration instead)"
                    )
                continue
            async with conn.transaction():
                await conn.execute(mig.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                    mig.version,
                    mig.name,
                    mig.sha256,
                )
            log.info("applied migration %04d_%s", mig.version, mig.name)
            applied.append(mig)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


async def check_schema(conn: Any) -> None:
    """Raise a one-line error unless every packaged migration has been applied."""
    done = await applied_migrations(conn)
    missing = [f"{m.version:04d}_{m.name}" for m in load_migrations() if m.version not in done]
    if missing:
        raise ConfigError(
            f"the database schema is not up to date (missing {', '.join(missing)}):"
            " run `ssmd db migrate` first"
        )


@dataclass(frozen=True, slots=True)
class Table:
    """A secmaster table as the sync writes it.

    ``columns`` are the synced columns, key first; every table also has
    ``updated_at`` and ``delisted_at``, which the upsert manages.
    """

    name: str
    key: str
    columns: tuple[str, ...]

    @property
    def stage(self) -> str:
        return f"_ssmd_stage_{self.name}"


async def _ensure_stage(conn: Any, table: Table) -> None:
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {table.stage} AS"
        f" SELECT {', '.join(table.columns)} FROM {table.name} WITH NO DATA"
    )


def _upsert_sql(table: Table) -> str:
    cols = ", ".join(table.columns)
    rest = [c for c in table.columns if c != table.key]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
    old = ", ".join(f"t.{c}" for c in rest)
    staged = ", ".join(f"s.{c}" for c in rest)
    new = ", ".join(f"EXCLUDED.{c}" for c in rest)
    # The anti-join leaves unchanged rows out before the INSERT: ON CONFLICT
    # would otherwise lock (and so dirty) every existing row even when its
    # WHERE is false. The WHERE stays for rows changed by a concurrent writer.
    return (
        f"WITH up AS (INSERT INTO {table.name} AS t ({cols}, updated_at)"
        f" SELECT {', '.join(f's.{c}' for c in table.columns)}, now()"
        f" FROM {table.stage} s LEFT JOIN {table.name} t USING ({table.key})"
        f" WHERE t.{table.key} IS NULL OR t.delisted_at IS NOT NULL"
        f" OR ({old}) IS DISTINCT FROM ({staged})"
        f" ON CONFLICT ({table.key}) DO UPDATE SET {sets}, updated_at = now(), delisted_at = NULL"
        f" WHERE ({old}) IS DISTINCT FROM ({new}) OR t.delisted_at IS NOT NULL"
        f" RETURNING (xmax = 0) AS inserted)"
        f" SELECT count(*) FILTER (WHERE inserted) AS ins,"
        f" count(*) FILTER (WHERE NOT inserted) AS upd FROM up"
    )


async def upsert(conn: Any, table: Table, rows: Iterable[tuple[Any, ...]]) -> tuple[int, int]:
    """Write ``rows`` (tuples in ``table.columns`` order, unique keys) in bulk.

    Returns (inserted, updated); rows whose content did not change are not
    written. Runs in one transaction.
    """
    records = list(rows)
    if not records:
        return 0, 0
    await _ensure_stage(conn, table)
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {table.stage}")
        await conn.copy_records_to_table(table.stage, records=records, columns=table.columns)
        # Row counts for the planner (hash the batch, not the table), and room
        # to hash without spilling to disk.
        await conn.execute(
            f"ANALYZE {table.stage} ({table.key}); SET LOCAL work_mem = '{UPSERT_WORK_MEM}'"
        )
        row = await conn.fetchrow(_upsert_sql(table))
    return int(row["ins"]), int(row["upd"])


async def delist(
    conn: Any, table: Table, seen: Iterable[str], scope: str = "TRUE", *args: Any
) -> int:
    """Mark the rows of ``table`` within ``scope`` whose key is not in ``seen``.

    ``scope`` is an SQL condition on the table (alias ``t``) with parameters
    ``$2``...; the rows get ``status = 'delisted'`` and ``delisted_at``, and
    are never deleted. Returns how many rows were marked.
    """
    result: str = await conn.execute(
        f"UPDATE {table.name} AS t SET status = 'delisted', delisted_at = now(), updated_at = now()"
        f" WHERE t.delisted_at IS NULL AND ({scope})"
        f" AND t.{table.key} NOT IN (SELECT unnest($1::text[]))",
        list(seen),
        *args,
    )
    return int(result.rsplit(" ", 1)[-1])
