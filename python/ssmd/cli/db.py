"""``ssmd db``: the secmaster's PostgreSQL schema."""

from __future__ import annotations

from typing import Annotated

import typer

from ssmd.cli._app import app
from ssmd.cli.secmaster import DatabaseOpt, run, settings, setup_logging

db_app = typer.Typer(name="db", help="PostgreSQL schema of the secmaster.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def migrate(
    database_url: DatabaseOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Apply the missing numbered SQL migrations (idempotent, safe to run concurrently)."""
    from ssmd.secmaster import db

    setup_logging(verbose)
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
    for m in applied:
        typer.echo(f"applied {m.version:04d}_{m.name}")
    typer.echo(
        f"schema up to date: {total} migration(s) recorded in schema_migrations"
        f" ({len(applied)} applied now)"
    )
