"""``ssmd db``: the secmaster's PostgreSQL schema."""

from __future__ import annotations

import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import JsonOut, LogFormat, LogLevel, echo_json, require
from ssmd.cli.secmaster import DatabaseOpt, run, settings, setup_logging

db_app = group("db", "PostgreSQL schema of the secmaster.")
app.add_typer(db_app, name="db")


@db_app.command(
    "migrate",
    epilog="Examples:\n\n\b\n  ssmd db migrate --database-url postgresql://ssmd@127.0.0.1/ssmd",
)
def migrate(
    database_url: DatabaseOpt = None,
    json_out: JsonOut = False,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
) -> None:
    """Apply the missing numbered SQL migrations (idempotent, safe to run concurrently)."""
    require("asyncpg", "secmaster", "ssmd db migrate")
    from ssmd.secmaster import db

    setup_logging(log_level, log_format)
    s = settings(database_url)

    async def go() -> tuple[list[db.Migration], int]:
        conn = await db.connect(s.database_url)
        try:
            async with db.database_errors("the migration"):
                applied = await db.migrate(conn)
                return applied, len(await db.applied_migrations(conn))
        finally:
            await conn.close()

    applied, total = run(go())
    if json_out:
        echo_json(
            {
                "applied": [f"{m.version:04d}_{m.name}" for m in applied],
                "recorded": total,
            }
        )
        return
    for m in applied:
        typer.echo(f"applied {m.version:04d}_{m.name}")
    typer.echo(
        f"schema up to date: {total:,} migration(s) recorded in schema_migrations"
        f" ({len(applied):,} applied now)"
    )
