"""``ssmd connect <venue>``: the capture service.

With ``--nats`` (``NATS_URL``) every envelope goes to its subject on
JetStream (the venue's stream is created or updated first) and ``ssmd
archive run`` writes the archive; ``memory://`` runs that bus and archiver in
this process. Without it the connector writes the archive itself under
``--dir`` (``SSMD_ARCHIVE_DIR``, default ``./data``). SIGINT, SIGTERM, SIGHUP
and ``--duration`` stop cleanly: buffered frames are processed, the archive is
flushed, fsynced and finalized.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ssmd.cli._app import app
from ssmd.cli.options import (
    DatabaseUrl,
    Dir,
    JsonOut,
    LogFormat,
    LogLevel,
    MetricsPort,
    check_url,
    duration,
    echo_json,
    require,
    serve_metrics,
    service_settings,
    split,
)
from ssmd.errors import ConfigError, ConnectorError
from ssmd.types import Codec, Venue

log = logging.getLogger("ssmd.connect")


@app.command(
    epilog="Examples:\n\n\b\n"
    "  ssmd connect kraken --symbols BTC/USD,ETH/USD --duration 1h\n"
    "  ssmd connect kalshi --category Economics --nats nats://127.0.0.1:4222\n"
    "  ssmd connect polymarket --all --dir /srv/ssmd/data --log-format json"
)
def connect(
    venue: Annotated[Venue, typer.Argument(help="The venue to capture.", show_default=False)],
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", metavar="A,B", help="Instruments (venue names or ids)."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every active instrument the venue lists.")
    ] = False,
    category: Annotated[
        str | None,
        typer.Option("--category", metavar="A,B", help="Kalshi: these series categories."),
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(
            "--channels",
            metavar="A,B",
            help="Only these channels.",
            show_default="the venue's defaults",
        ),
    ] = None,
    ws_url: Annotated[
        str | None,
        typer.Option(
            "--ws-url",
            metavar="URL",
            help="WebSocket endpoint (a simulator, a proxy) [env var: SSMD_<VENUE>_WS_URL].",
            show_default="the venue's",
        ),
    ] = None,
    rest_url: Annotated[
        str | None,
        typer.Option(
            "--rest-url",
            metavar="URL",
            help="REST API root for discovery [env var: SSMD_<VENUE>_REST_URL].",
            show_default="the venue's",
        ),
    ] = None,
    dir_: Dir = None,
    writer: Annotated[
        str | None,
        typer.Option(
            "--writer",
            metavar="NAME",
            help="Writer name in file names.",
            show_default="this host's name",
        ),
    ] = None,
    codec: Annotated[Codec, typer.Option("--codec", help="Archive codec.")] = Codec.GZIP,
    nats: Annotated[
        str | None,
        typer.Option(
            "--nats",
            envvar="NATS_URL",
            show_envvar=True,
            metavar="URL",
            show_default="unset: write the archive here",
            help="Publish to this NATS JetStream server instead of writing the archive"
            " (memory:// runs the bus and the archiver in this process).",
        ),
    ] = None,
    bus_buffer: Annotated[
        int,
        typer.Option(
            "--bus-buffer-mb",
            min=1,
            max=4096,
            metavar="MB",
            help="Unconfirmed bus data kept while NATS is slow or down; past it, data is"
            " dropped and recorded as a gap.",
        ),
    ] = 64,
    recv_buffer_kb: Annotated[
        int | None,
        typer.Option(
            "--recv-buffer-kb",
            min=0,
            max=65536,
            metavar="KIB",
            help="Socket receive buffer per venue connection: what one read brings at most"
            " (more carries more over a long round trip, less waits less at full speed;"
            " 0: the kernel's autotuning).",
            show_default="256",
        ),
    ] = None,
    max_per_connection: Annotated[
        int | None,
        typer.Option(
            "--max-per-connection",
            min=1,
            metavar="N",
            help="Instruments per connection (sharding).",
            show_default="the venue's",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow/--no-follow",
            help="With --all or --category, a secmaster (DATABASE_URL) and NATS: follow the"
            " secmaster's changes (CDC), subscribing new instruments and dropping closed ones.",
        ),
    ] = True,
    duration_: Annotated[
        float | None,
        typer.Option(
            "--duration",
            parser=duration,
            metavar="DURATION",
            help="Stop cleanly after this long (90, 15m, 6h, 7d).",
            show_default="until a signal",
        ),
    ] = None,
    stall_timeout: Annotated[
        float,
        typer.Option(
            "--stall-timeout",
            parser=duration,
            metavar="DURATION",
            help="Data stall bound.",
            show_default="10s",
        ),
    ] = 10.0,
    metrics_port: MetricsPort = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    json_out: JsonOut = False,
) -> None:
    """Capture a venue's market data until stopped: into the archive, or onto NATS.

    Without --nats the connector writes the gzip JSONL archive itself; with it,
    every message goes to JetStream and `ssmd archive run` writes the archive.
    A summary is printed at the end; the exit status is 1 when no connection
    could ever be made. Subjects start with the environment SSMD_ENV (default
    prod: prod.kraken.json.trade.BTC_USD, in archive lines and on NATS) and
    name the stream published to (PROD_KRAKEN).
    """
    s = service_settings(
        archive_dir=dir_,
        nats_url=nats,
        database_url=database_url,
        log_level=log_level,
        log_format=log_format,
    )
    if stall_timeout < 0.1:
        raise ConfigError("--stall-timeout must be at least 0.1 s")
    vs = s.venue(venue)
    config: dict[str, Any] = {}
    ws = ws_url or vs.ws_url
    rest = rest_url or vs.rest_url
    if ws is not None:
        config["ws_url"] = check_url(ws, "--ws-url", ("ws", "wss"))
    if rest is not None:
        config["rest_url"] = check_url(rest, "--rest-url", ("http", "https"))
    if channels:
        config["channels"] = split(channels)
    if max_per_connection is not None:
        config["max_per_connection"] = max_per_connection
    if recv_buffer_kb is not None:
        config["recv_buffer"] = recv_buffer_kb << 10
    if vs.max_frame_bytes is not None:
        config["max_frame_size"] = vs.max_frame_bytes
    if s.database_url:
        require("asyncpg", "secmaster", "ssmd connect with a secmaster (DATABASE_URL)")
        config["database_url"] = check_url(
            s.database_url, "--database-url", ("postgresql", "postgres")
        )
    if venue is Venue.KALSHI:
        config["api_key"] = s.kalshi_api_key
        config["private_key_path"] = (
            str(s.kalshi_private_key_path) if s.kalshi_private_key_path else None
        )
    from ssmd.connectors.base import InstrumentQuery
    from ssmd.connectors.registry import create

    connector = create(venue, config)
    query = InstrumentQuery(symbols=split(symbols), categories=split(category), all=all_)
    if query.empty and not connector.accepts_empty_query():
        raise ConfigError("say which instruments: --symbols A,B, --all or --category C")
    nats_url = s.nats_url
    if nats_url:
        nats_url = check_url(nats_url, "--nats", ("nats", "tls", "memory"))
        if not nats_url.startswith("memory:"):
            require("nats", "bus", "ssmd connect --nats")
    serve_metrics(metrics_port)
    from ssmd.runtime.capture import default_writer, run_capture

    root = s.archive_dir
    name = writer or default_writer()
    bus_stats: dict[str, int] = {}

    async def main() -> Any:
        from ssmd.bus.local import is_memory_url

        nc = None
        local = None
        if nats_url and is_memory_url(nats_url):
            from ssmd.bus.local import LocalPipeline
            from ssmd.runtime.metrics import metrics

            local = LocalPipeline(connector.venue, root, env=s.env, writer=name, metrics=metrics())
            await local.start()
            sink: Any = local
        elif nats_url:
            from ssmd.bus.nats import open_bus_sink
            from ssmd.bus.streams import stream_specs
            from ssmd.runtime.metrics import metrics

            sink, nc = await open_bus_sink(
                connector.venue,
                env=s.env,
                url=nats_url,
                specs=stream_specs(s.env, environ=s.streams),
                max_pending_bytes=bus_buffer << 20,
                metrics=metrics(),
            )
        else:
            from ssmd.runtime.sink import ArchiveSink

            sink = ArchiveSink(root, connector.venue, name, codec=codec.value)
        tasks: list[asyncio.Task[None]] = []

        def started(capture: Any) -> None:
            follower = _follower(connector, query, capture, nats_url, follow)
            if follower is not None:
                stop = asyncio.Event()
                tasks.append(asyncio.create_task(follower.run(stop), name="ssmd-follow"))

        try:
            return await run_capture(
                connector,
                query,
                sink,
                duration=duration_,
                signals=True,
                started=started,
                writer=name,
                env=s.env,
                stall_timeout=stall_timeout,
            )
        finally:
            for t in tasks:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
            if nc is not None:
                bus_stats.update(sink.stats())
                await nc.close()
            if local is not None:
                bus_stats.update(local.sink.stats())

    capture = asyncio.run(main())
    summary = _summary(capture, connector.venue, nats_url, root, bus_stats)
    if json_out:
        echo_json(summary)
    else:
        _print(summary)
    if not summary["connected"]:
        raise ConnectorError(
            f"{connector.venue}: never connected to {connector.ws_url}"
            + (f" ({summary['last_failure']})" if summary["last_failure"] else "")
        )


def _follower(connector: Any, query: Any, capture: Any, nats_url: str | None, follow: bool) -> Any:
    """A follower of the secmaster's changes, when this capture can have one (else ``None``)."""
    from ssmd.bus.local import is_memory_url

    res = connector.resolution
    if not follow or not (query.all or query.categories) or res.global_subscription:
        return None  # explicit ids, or a venue-wide subscription: nothing to follow
    if res.snapshot_lsn is None:
        log.info(
            "%s: not from the secmaster (DATABASE_URL): no dynamic subscriptions", connector.venue
        )
        return None
    if not nats_url or is_memory_url(nats_url):
        log.info("%s: no NATS server (--nats): no dynamic subscriptions", connector.venue)
        return None
    from ssmd.follow import Follower

    return Follower(connector, query, capture, nats_url)


def _summary(
    capture: Any, venue: str, nats: str | None, root: Path, bus_stats: dict[str, int]
) -> dict[str, Any]:
    t = capture.totals()
    f = capture.flow
    return {
        "venue": venue,
        "destination": _where(nats, root),
        "connected": any(c.connects for c in capture.connections),
        "last_failure": next((c.last_failure for c in capture.connections if c.last_failure), None),
        "frames": t.get("frames", 0),
        "messages": t.get("data", 0),
        "kinds": dict(sorted(capture.kinds().items())),
        "malformed": t.get("malformed", 0),
        "gaps": t.get("gaps", 0),
        "reconnects": t.get("reconnects", 0),
        "stalls": t.get("stalls", 0),
        "read_pauses": f.pauses,
        "read_paused_seconds": round(f.paused_seconds, 3),
        "longest_pause_seconds": round(f.longest, 3),
        "pause_overflows": f.overflows,
        "bus": bus_stats or None,
    }


def _print(s: dict[str, Any]) -> None:
    kinds = ", ".join(f"{k}={n:,}" for k, n in s["kinds"].items())
    typer.echo(
        f"ssmd connect {s['venue']}: {s['frames']:,} frames, {s['messages']:,} messages "
        f"({kinds or 'none'}), {s['malformed']:,} malformed, {s['gaps']:,} gaps, "
        f"{s['reconnects']:,} reconnects, {s['stalls']:,} stalls -> {s['destination']}"
    )
    b = s["bus"]
    if b:
        typer.echo(
            f"bus: {b['lines_acked']:,} lines in {b['published']:,} messages confirmed "
            f"({b['duplicates']:,} duplicates dropped by the server, {b['resent']:,} re-sent), "
            f"{b['dropped_lines']:,} lines dropped in {b['gaps']:,} gap(s)"
        )
    if s["read_pauses"]:
        typer.echo(
            f"flow control: reading paused {s['read_pauses']:,} time(s) while the sink caught up, "
            f"{s['read_paused_seconds']:.1f}s in all (longest {s['longest_pause_seconds']:.1f}s)"
            + (
                f", {s['pause_overflows']:,} pause(s) ran out and the overflow policy applied"
                if s["pause_overflows"]
                else ""
            )
        )


def _where(nats: str | None, root: Path) -> str:
    if not nats:
        return str(root)
    from ssmd.bus.local import is_memory_url

    if is_memory_url(nats):
        return f"{root} (through the in-process bus)"
    from ssmd.bus.nats import redact

    return f"NATS {redact(nats)}"


__all__ = ["connect"]
