"""``ssmd lifecycle run``: Kalshi lifecycle events from the bus into the secmaster."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import (
    DatabaseUrl,
    JsonOut,
    LogFormat,
    LogLevel,
    Nats,
    StopAfter,
    check_url,
    echo_json,
    need_nats,
    require,
    service_settings,
)
from ssmd.errors import ConfigError

lifecycle_app = group(
    "lifecycle", "Kalshi market lifecycle events into the secmaster (docs/lifecycle.md)."
)
app.add_typer(lifecycle_app, name="lifecycle")


@lifecycle_app.command(
    "run",
    epilog="Examples:\n\n\b\n"
    "  ssmd lifecycle run --database-url postgresql://ssmd@127.0.0.1/ssmd --nats nats://127.0.0.1:4222",
)
def lifecycle_run(
    database_url: DatabaseUrl = None,
    nats: Nats = None,
    consumer: Annotated[
        str,
        typer.Option("--consumer", metavar="NAME", help="Durable consumer of the Kalshi stream."),
    ] = "lifecycle",
    duration_: StopAfter = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    json_out: JsonOut = False,
) -> None:
    """Run the lifecycle consumer: market_lifecycle_v2 and event_lifecycle into PostgreSQL.

    Each event is recorded in market_lifecycle_events (once, however often it is
    delivered) and moves its market's status, close and settlement fields
    forward, never backwards; unreadable messages go to deadletter.lifecycle.
    """
    require("asyncpg", "secmaster", "ssmd lifecycle run")
    require("nats", "bus", "ssmd lifecycle run")
    s = service_settings(
        database_url=database_url, nats_url=nats, log_level=log_level, log_format=log_format
    )
    if not s.database_url:
        raise ConfigError(
            "the lifecycle consumer writes the secmaster: give --database-url or DATABASE_URL"
        )
    dsn = check_url(s.database_url, "--database-url", ("postgresql", "postgres"))
    url = need_nats(s.nats_url, "ssmd lifecycle run")
    from ssmd.lifecycle.service import LifecycleService
    from ssmd.runtime.shutdown import run_until_stopped

    service = LifecycleService(dsn, url, env=s.env, durable=consumer)

    stats = asyncio.run(run_until_stopped(service.run, duration_))
    if json_out:
        echo_json(stats.as_dict())
        return
    outcomes = ", ".join(f"{n:,} {k}" for k, n in sorted(stats.outcomes.items())) or "none"
    typer.echo(
        f"ssmd lifecycle: {stats.events:,} event(s) from {stats.messages:,} message(s)"
        f" ({outcomes}), {stats.deadletters:,} sent to deadletter.lifecycle"
    )
