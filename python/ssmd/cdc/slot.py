"""The logical replication slot ssmd's CDC reads: checks, creation, status, advance.

Every failure PostgreSQL reports for a setup mistake becomes a one-line
:class:`~ssmd.errors.ConfigError` that says what to fix: ``wal_level`` not
``logical``, the ``wal2json`` plugin missing, a role without ``REPLICATION``,
a slot that PostgreSQL invalidated (``max_slot_wal_keep_size``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssmd.cdc.wal2json import format_lsn
from ssmd.errors import ConfigError

__all__ = [
    "SlotInfo",
    "SlotLost",
    "advance",
    "check_server",
    "ensure_slot",
    "raise_if_lost",
    "slot_info",
    "slot_lost",
]

PLUGIN = "wal2json"


class SlotLost(ConfigError):
    """PostgreSQL invalidated the slot: changes are gone; ``--resync`` rebuilds."""


def slot_lost(name: str) -> SlotLost:
    """The one-line error for a slot PostgreSQL invalidated: what happened, what to run."""
    return SlotLost(
        f"replication slot {name!r} was invalidated by PostgreSQL (its WAL is gone,"
        " max_slot_wal_keep_size): changes were lost; run `ssmd cdc run --resync`"
        " to recreate it and publish a snapshot of the tables"
    )


@dataclass(frozen=True)
class SlotInfo:
    name: str
    plugin: str
    #: where the slot's consumer confirmed (ssmd advances it past acknowledged transactions)
    confirmed_lsn: int | None
    restart_lsn: int | None
    wal_status: str | None
    active: bool
    #: WAL bytes the slot holds back: server position minus the confirmed position
    lag_bytes: int | None
    server_lsn: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.name,
            "plugin": self.plugin,
            "confirmed_lsn": None if self.confirmed_lsn is None else format_lsn(self.confirmed_lsn),
            "restart_lsn": None if self.restart_lsn is None else format_lsn(self.restart_lsn),
            "server_lsn": format_lsn(self.server_lsn),
            "wal_status": self.wal_status,
            "active": self.active,
            "lag_bytes": self.lag_bytes,
        }


async def check_server(conn: Any) -> None:
    """One-line errors for a server that cannot do logical decoding."""
    level = await conn.fetchval("SHOW wal_level")
    if level != "logical":
        raise ConfigError(
            f"PostgreSQL wal_level is {level!r}: CDC needs logical decoding:"
            " run ALTER SYSTEM SET wal_level = logical (as a superuser) and restart PostgreSQL"
        )


async def slot_info(conn: Any, name: str) -> SlotInfo | None:
    row = await conn.fetchrow(
        "SELECT plugin, confirmed_flush_lsn, restart_lsn, wal_status, active,"
        " pg_current_wal_lsn() AS server_lsn,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag"
        " FROM pg_replication_slots WHERE slot_name = $1",
        name,
    )
    if row is None:
        return None
    return SlotInfo(
        name=name,
        plugin=row["plugin"],
        confirmed_lsn=row["confirmed_flush_lsn"],
        restart_lsn=row["restart_lsn"],
        wal_status=row["wal_status"],
        active=bool(row["active"]),
        lag_bytes=row["lag"],
        server_lsn=row["server_lsn"],
    )


async def ensure_slot(conn: Any, name: str, *, recreate: bool = False) -> tuple[SlotInfo, bool]:
    """The slot ``name`` (created with ``wal2json`` if missing); also whether it was created.

    ``recreate`` drops it first (``--resync``). A slot PostgreSQL invalidated
    raises :class:`SlotLost`; one of another plugin is a configuration error.
    """
    import asyncpg  # type: ignore[import-untyped]

    await check_server(conn)
    info = await slot_info(conn, name)
    if info is not None and recreate:
        await conn.execute("SELECT pg_drop_replication_slot($1)", name)
        info = None
    if info is not None:
        if info.plugin != PLUGIN:
            raise ConfigError(
                f"replication slot {name!r} uses the {info.plugin!r} plugin, not {PLUGIN}:"
                " choose another --slot or drop it"
            )
        if info.wal_status == "lost":
            raise slot_lost(name)
        return info, False
    try:
        await conn.execute("SELECT pg_create_logical_replication_slot($1, $2)", name, PLUGIN)
    except asyncpg.UndefinedFileError:
        raise ConfigError(
            f"the {PLUGIN} output plugin is not installed on the PostgreSQL server"
            " (Debian: apt install postgresql-15-wal2json)"
        ) from None
    except asyncpg.InsufficientPrivilegeError:
        user = await conn.fetchval("SELECT current_user")
        raise ConfigError(
            f"PostgreSQL role {user!r} may not create replication slots:"
            f" ALTER ROLE {user} REPLICATION (or use a superuser)"
        ) from None
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        raise ConfigError(f"PostgreSQL cannot create the slot: {exc}") from None
    created = await slot_info(conn, name)
    assert created is not None
    return created, True


async def raise_if_lost(conn: Any, name: str) -> None:
    """Raise :class:`SlotLost` if PostgreSQL invalidated the slot ``name``.

    Invalidation can come while the service runs (a checkpoint removes the
    WAL of a slot that fell more than ``max_slot_wal_keep_size`` behind): the
    next peek or advance then fails with ``55000`` (object not in
    prerequisite state), which says nothing of ``--resync`` by itself.
    """
    info = await slot_info(conn, name)
    if info is not None and (info.wal_status == "lost" or info.restart_lsn is None):
        raise slot_lost(name)


async def advance(conn: Any, name: str, lsn: int) -> None:
    """Move the slot's confirmed position to ``lsn`` (never backwards)."""
    await conn.execute("SELECT pg_replication_slot_advance($1, $2::pg_lsn)", name, lsn)
