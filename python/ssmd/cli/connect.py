"""``ssmd connect <venue>``: capture a venue's market data.

With ``NATS_URL`` (or ``--nats``) every envelope goes to its subject on
JetStream (the venue's stream is created or updated first) and ``ssmd
archive`` writes the archive. Without it the connector writes the archive
itself: ``--archive DIR`` (default ``$SSMD_ARCHIVE_DIR`` or ``./data``). SIGINT/SIGTERM and ``--duration`` stop cleanly: buffered frames
are processed, the archive is flushed, fsynced and finalized.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ssmd.archive import archive_dir
from ssmd.bus.local import is_memory_url
from ssmd.cli._app import app
from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.registry import create
from ssmd.errors import ConfigError
from ssmd.types import Venue

LOG_LEVELS = ("debug", "info", "warning", "error")


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(s.strip() for s in value.split(",") if s.strip())


def setup_logging(level: str) -> None:
    """Configure the root handler (only entry points do this, STYLE item 16)."""
    if level.lower() not in LOG_LEVELS:
        raise ConfigError(f"bad --log-level {level!r} (use {', '.join(LOG_LEVELS)})")
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # picows and httpx at debug would log upgrade and request headers (Kalshi's signed ones)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("picows").setLevel(logging.WARNING)


@app.command()
def connect(
    venue: Annotated[str, typer.Argument(help=f"Venue: {Venue.names()}.")],
    url: Annotated[
        str | None, typer.Option("--url", help="WebSocket URL (a simulator, a proxy).")
    ] = None,
    rest_url: Annotated[
        str | None, typer.Option("--rest-url", help="REST API root used for discovery.")
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", help="Comma-separated instruments (venue names or ids)."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every active instrument the venue lists.")
    ] = False,
    category: Annotated[
        str | None, typer.Option("--category", help="Kalshi: series categories, comma-separated.")
    ] = None,
    channels: Annotated[
        str | None, typer.Option("--channels", help="Only these channels, comma-separated.")
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option("--archive", help="Archive root (default $SSMD_ARCHIVE_DIR or ./data)."),
    ] = None,
    writer: Annotated[
        str | None, typer.Option("--writer", help="Writer name in file names (default: host).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", min=0, help="Stop cleanly after SECONDS.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus /metrics on this port.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")] = (
        "info"
    ),
    stall_timeout: Annotated[
        float, typer.Option("--stall-timeout", min=0.1, help="Data stall bound in seconds.")
    ] = 10.0,
    codec: Annotated[
        str, typer.Option("--codec", help="Archive codec: gzip (the default) or zstd.")
    ] = "gzip",
    nats_url: Annotated[
        str | None,
        typer.Option(
            "--nats",
            help="Publish to this NATS JetStream server instead of writing the archive"
            " ('memory://': the in-process bus and archiver) [default: $NATS_URL; unset ="
            " embedded archive].",
            show_default=False,
        ),
    ] = None,
    bus_buffer: Annotated[
        int,
        typer.Option(
            "--bus-buffer-mb",
            min=1,
            help="Unconfirmed bus data kept while NATS is slow or down; past it, data is"
            " dropped and recorded as a gap.",
        ),
    ] = 64,
    max_per_connection: Annotated[
        int | None,
        typer.Option("--max-per-connection", min=1, help="Instruments per connection (sharding)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Resolve instruments through the secmaster in this PostgreSQL database"
            " (default: $DATABASE_URL; unset or '': the venue's REST API).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Capture a venue's market data into the archive until stopped."""
    setup_logging(log_level)
    if codec not in ("gzip", "zstd"):
        raise ConfigError(f"bad --codec {codec!r}: gzip or zstd")
    settings: dict[str, Any] = {}
    for key, value in (
        ("ws_url", url),
        ("rest_url", rest_url),
        ("channels", _split(channels) or None),
        ("max_per_connection", max_per_connection),
        ("database_url", os.environ.get("DATABASE_URL") if database_url is None else database_url),
    ):
        if value is not None:
            settings[key] = value
    connector = create(venue, settings)
    query = InstrumentQuery(symbols=_split(symbols), categories=_split(category), all=all_)
    if query.empty and not connector.accepts_empty_query():
        raise ConfigError("say which instruments: --symbols A,B, --all or --category C")
    if metrics_port is not None:
        from ssmd.runtime.metrics import serve

        try:
            serve(metrics_port)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on port {metrics_port}: {exc}") from exc
    from ssmd.runtime.capture import default_writer, run_capture

    root = archive_dir(archive)
    name = writer or default_writer()
    nats = nats_url or os.environ.get("NATS_URL")
    bus_stats: dict[str, int] = {}

    async def main() -> Any:
        nc = None
        local = None
        if nats and is_memory_url(nats):
            from ssmd.bus.local import LocalPipeline
            from ssmd.bus.streams import env_name
            from ssmd.runtime.metrics import metrics

            local = LocalPipeline(
                connector.venue, root, env=env_name(), writer=name, metrics=metrics()
            )
            await local.start()
            sink: Any = local
        elif nats:
            from ssmd.bus.nats import open_bus_sink
            from ssmd.bus.streams import env_name
            from ssmd.runtime.metrics import metrics

            sink, nc = await open_bus_sink(
                connector.venue,
                env=env_name(),
                url=nats,
                max_pending_bytes=bus_buffer << 20,
                metrics=metrics(),
            )
        else:
            from ssmd.runtime.sink import ArchiveSink

            sink = ArchiveSink(root, connector.venue, name, codec=codec)
        try:
            return await run_capture(
                connector,
                query,
                sink,
                duration=duration,
                signals=True,
                writer=name,
                stall_timeout=stall_timeout,
            )
        finally:
            if nc is not None:
                bus_stats.update(sink.stats())
                await nc.close()
            if local is not None:
                bus_stats.update(local.sink.stats())

    capture = asyncio.run(main())
    t = capture.totals()
    kinds = ", ".join(f"{k}={n:,}" for k, n in sorted(capture.kinds().items()))
    typer.echo(
        f"ssmd connect {connector.venue}: {t.get('frames', 0):,} frames, "
        f"{t.get('data', 0):,} messages ({kinds or 'none'}), {t.get('malformed', 0)} malformed, "
        f"{t.get('gaps', 0)} gaps, {t.get('reconnects', 0)} reconnects, {t.get('stalls', 0)} stalls "
        f"-> {_where(nats, root)}"
    )
    if bus_stats:
        typer.echo(
            f"bus: {bus_stats['lines_acked']:,} lines in {bus_stats['published']:,} messages "
            f"confirmed ({bus_stats['duplicates']} duplicates dropped by the server, "
            f"{bus_stats['resent']} re-sent), {bus_stats['dropped_lines']:,} lines dropped "
            f"in {bus_stats['gaps']} gap(s)"
        )
    f = capture.flow
    if f.pauses:
        typer.echo(
            f"flow control: reading paused {f.pauses:,} time(s) while the sink caught up, "
            f"{f.paused_seconds:.1f}s in all (longest {f.longest:.1f}s)"
            + (
                f", {f.overflows} pause(s) ran out and the overflow policy applied"
                if f.overflows
                else ""
            )
        )


def _where(nats: str | None, root: Path) -> str:
    if not nats:
        return str(root)
    if is_memory_url(nats):
        return f"{root} (through the in-process bus)"
    from ssmd.bus.nats import redact

    return f"NATS {redact(nats)}"
