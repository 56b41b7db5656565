"""``ssmd cache run``: the secmaster's instruments in Redis, kept current from CDC."""

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
    MetricsPort,
    Nats,
    RedisUrl,
    StopAfter,
    check_url,
    duration,
    echo_json,
    need_nats,
    require,
    serve_metrics,
    service_settings,
)
from ssmd.errors import ConfigError

cache_app = group("cache", "The Redis cache of the secmaster's instruments (docs/cache.md).")
app.add_typer(cache_app, name="cache")


@cache_app.command(
    "run",
    epilog="Examples:\n\n\b\n"
    "  ssmd cache run --database-url postgresql://ssmd@127.0.0.1/ssmd"
    " --nats nats://127.0.0.1:4222 --redis-url redis://127.0.0.1:6379/0",
)
def cache_run(
    database_url: DatabaseUrl = None,
    nats: Nats = None,
    redis_url: RedisUrl = None,
    consumer: Annotated[
        str, typer.Option("--consumer", metavar="NAME", help="Durable consumer of SECMASTER_CDC.")
    ] = "cache",
    drift_every: Annotated[
        float,
        typer.Option(
            "--drift-every",
            parser=duration,
            metavar="DURATION",
            help="Compare a sample of keys with PostgreSQL this often (0: never).",
            show_default="60s",
        ),
    ] = 60.0,
    quotes: Annotated[
        bool,
        typer.Option(
            "--quotes",
            help="Also keep the last quote and trade of every instrument from the market-data"
            " streams (ssmd:VENUE:quote:ID).",
        ),
    ] = False,
    duration_: StopAfter = None,
    metrics_port: MetricsPort = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    json_out: JsonOut = False,
) -> None:
    """Run the cache service: load the instruments view into Redis, then follow cdc.>.

    Each key ssmd:VENUE:inst:ID holds a row of the view and the (lsn, n) of its
    last change; a change older than that is ignored. A restart, a FLUSHDB or a
    CDC resync loads the view again, swapped in atomically.
    """
    require("asyncpg", "secmaster", "ssmd cache run")
    require("nats", "bus", "ssmd cache run")
    require("redis", "cache", "ssmd cache run")
    s = service_settings(
        database_url=database_url,
        nats_url=nats,
        redis_url=redis_url,
        log_level=log_level,
        log_format=log_format,
    )
    if not s.database_url:
        raise ConfigError("the cache reads the secmaster: give --database-url or set DATABASE_URL")
    if not s.redis_url:
        raise ConfigError("the cache writes Redis: give --redis-url or set REDIS_URL")
    dsn = check_url(s.database_url, "--database-url", ("postgresql", "postgres"))
    redis = check_url(s.redis_url, "--redis-url", ("redis", "rediss", "unix"))
    url = need_nats(s.nats_url, "ssmd cache run")
    serve_metrics(metrics_port)
    from ssmd.cache.service import CacheService
    from ssmd.runtime.shutdown import run_until_stopped

    service = CacheService(
        dsn, url, redis, durable=consumer, drift_every=drift_every, quotes=quotes, env=s.env
    )

    stats = asyncio.run(run_until_stopped(service.run, duration_))
    if json_out:
        echo_json(stats.as_dict())
        return
    typer.echo(
        f"ssmd cache: {stats.rows_loaded:,} row(s) loaded in {stats.bootstraps:,} load(s),"
        f" {stats.changes:,} change(s) applied ({stats.written:,} written, {stats.deleted:,}"
        f" deleted, {stats.stale:,} older than the cache), drift {stats.drift:,}"
        f" of {stats.drift_checked:,} sampled"
    )
