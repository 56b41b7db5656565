"""``ssmd archive`` (no subcommand): the archiver service; ``ssmd archive status``.

The archiver drains each venue's JetStream stream (durable pull consumer
``archiver``) into the gzip JSONL archive and acknowledges only what is
fsynced. Needs ``NATS_URL`` (or ``--nats``); without a bus the connector
writes the archive itself (``ssmd connect``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from ssmd.archive import archive_dir
from ssmd.cli.archive import archive_app
from ssmd.errors import ConfigError

VenuesOpt = Annotated[
    list[str] | None,
    typer.Option("--venue", help="Venue to archive (repeat; default: all four)."),
]
DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir", help="Archive root [default: $SSMD_ARCHIVE_DIR, else ./data].", show_default=False
    ),
]
NatsOpt = Annotated[
    str | None,
    typer.Option("--nats", help="NATS server [default: $NATS_URL].", show_default=False),
]
ConsumerOpt = Annotated[str, typer.Option("--consumer", help="Durable consumer name.")]


def _nats(url: str | None) -> str:
    url = url or os.environ.get("NATS_URL")
    if not url:
        raise ConfigError(
            "the archiver reads NATS JetStream: set NATS_URL or --nats "
            "(without a bus, `ssmd connect` writes the archive itself)"
        )
    return url


@archive_app.callback(invoke_without_command=True)
def archive_service(
    ctx: typer.Context,
    venue: VenuesOpt = None,
    dir: DirOpt = None,
    nats: NatsOpt = None,
    consumer: ConsumerOpt = "archiver",
    writer: Annotated[
        str, typer.Option("--writer", help="Writer name in file names.")
    ] = "archiver",
    rotation: Annotated[
        int, typer.Option("--rotation", min=60, help="File rotation window, seconds.")
    ] = 900,
    codec: Annotated[str, typer.Option("--codec", help="gzip or zstd.")] = "gzip",
    flush_interval: Annotated[
        float,
        typer.Option("--flush-interval", min=0.01, help="Seconds between durable writes (acks)."),
    ] = 1.0,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Messages per fetch.")] = 4096,
    duration: Annotated[
        float | None, typer.Option("--duration", min=0, help="Stop cleanly after SECONDS.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus /metrics on this port.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")] = (
        "info"
    ),
) -> None:
    """Read and check the gzip JSONL archive; with no command, run the archiver service."""
    if ctx.invoked_subcommand is not None:
        return
    from ssmd.bus.service import check_venues, run_archiver
    from ssmd.bus.streams import env_name
    from ssmd.cli.connect import setup_logging
    from ssmd.runtime.metrics import metrics, serve

    setup_logging(log_level)
    if codec not in ("gzip", "zstd"):
        raise ConfigError(f"bad --codec {codec!r}: gzip or zstd")
    venues = check_venues(venue or [])
    url = _nats(nats)
    root = archive_dir(dir)
    if metrics_port is not None:
        try:
            serve(metrics_port)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on port {metrics_port}: {exc}") from exc
    stats = asyncio.run(
        run_archiver(
            venues,
            root,
            env=env_name(),
            url=url,
            consumer=consumer,
            writer=writer,
            duration=duration,
            metrics=metrics(),
            rotation_secs=rotation,
            codec=codec,
            flush_interval=flush_interval,
            batch=batch,
        )
    )
    for s in stats:
        typer.echo(
            f"ssmd archive {s.venue}: {s.messages:,} messages, {s.lines:,} lines, "
            f"{s.bytes_in:,} bytes -> {s.bytes_out:,} compressed, {s.skipped:,} skipped "
            f"(already archived), {s.gaps} gap(s) ({s.missing:,} messages gone), "
            f"{s.malformed} malformed -> {root / s.venue}"
        )


@archive_app.command("status")
def archive_status(
    venue: VenuesOpt = None,
    dir: DirOpt = None,
    nats: NatsOpt = None,
    consumer: ConsumerOpt = "archiver",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Archiver lag and health per venue: stream, consumer pending, last write, bytes today."""
    from dataclasses import asdict

    from ssmd.bus.service import age, archive_health, check_venues
    from ssmd.bus.streams import env_name

    venues = check_venues(venue or [])
    root = archive_dir(dir)
    url = nats or os.environ.get("NATS_URL")
    health, err = asyncio.run(
        archive_health(venues, root, env=env_name(), url=url, consumer=consumer)
    )
    if as_json:
        out: dict[str, Any] = {"venues": [asdict(h) for h in health], "nats_error": err}
        typer.echo(orjson.dumps(out).decode())
        return
    if err:
        typer.echo(f"NATS: {err}", err=True)

    def n(v: int | None) -> str:
        return "-" if v is None else f"{v:,}"

    rows = [
        (
            "venue",
            "stream",
            "messages",
            "last seq",
            "pending",
            "archived to",
            "last write",
            "files today",
            "lines today",
            "bytes today",
        )
    ]
    for h in health:
        rows.append(
            (
                h.venue,
                h.stream,
                n(h.stream_messages),
                n(h.last_seq),
                n(h.consumer_pending),
                n(h.archived_seq),
                age(h.last_write),
                n(h.files_today),
                n(h.lines_today),
                n(h.bytes_today),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
