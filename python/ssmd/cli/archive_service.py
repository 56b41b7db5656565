"""``ssmd archive run``: the archiver service; ``ssmd archive status``.

The archiver drains each venue's JetStream stream (durable pull consumer
``archiver``) into the gzip JSONL archive and acknowledges only what is
fsynced. It needs NATS (``--nats`` or ``NATS_URL``); without a bus the
connector writes the archive itself (``ssmd connect``).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any

import typer

from ssmd.cli.archive import archive_app
from ssmd.cli.options import (
    Dir,
    JsonOut,
    LogFormat,
    LogLevel,
    MetricsPort,
    Nats,
    StopAfter,
    Venues,
    duration,
    echo_json,
    need_nats,
    require,
    serve_metrics,
    service_settings,
    settings,
    table,
)
from ssmd.errors import ConfigError
from ssmd.types import Codec, Venue

Consumer = Annotated[str, typer.Option("--consumer", metavar="NAME", help="Durable consumer name.")]


def _venues(venue: list[Venue] | None) -> list[str]:
    return [v.value for v in (dict.fromkeys(venue) if venue else Venue)]


@archive_app.command(
    "run",
    epilog="Examples:\n\n\b\n"
    "  ssmd archive run --nats nats://127.0.0.1:4222 --dir /srv/ssmd/data\n"
    "  ssmd archive run --venue kalshi --venue kraken --codec zstd --duration 6h",
)
def archive_run(
    venue: Venues = None,
    dir_: Dir = None,
    nats: Nats = None,
    consumer: Consumer = "archiver",
    writer: Annotated[
        str, typer.Option("--writer", metavar="NAME", help="Writer name in file names.")
    ] = "archiver",
    rotation: Annotated[
        float,
        typer.Option(
            "--rotation",
            parser=duration,
            metavar="DURATION",
            help="File rotation window.",
            show_default="15m",
        ),
    ] = 900.0,
    codec: Annotated[Codec, typer.Option("--codec", help="Archive codec.")] = Codec.GZIP,
    flush_interval: Annotated[
        float,
        typer.Option(
            "--flush-interval",
            parser=duration,
            metavar="DURATION",
            help="Time between durable writes (acknowledgements).",
            show_default="1s",
        ),
    ] = 1.0,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=1 << 20, metavar="N", help="Messages per fetch.")
    ] = 4096,
    duration_: StopAfter = None,
    metrics_port: MetricsPort = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    json_out: JsonOut = False,
) -> None:
    """Run the archiver service: JetStream streams -> the gzip JSONL archive, until stopped.

    Each venue's stream is read by a durable pull consumer; a message is
    acknowledged only once the gzip member holding it is written and fsynced.
    The environment SSMD_ENV (default prod) names the streams read:
    PROD_KRAKEN, or STAGING_KRAKEN with SSMD_ENV=staging.
    """
    require("nats", "bus", "ssmd archive run")
    s = service_settings(
        archive_dir=dir_, nats_url=nats, log_level=log_level, log_format=log_format
    )
    url = need_nats(s.nats_url, "ssmd archive run")
    if rotation < 60:
        raise ConfigError("--rotation must be at least 60 s")
    if flush_interval < 0.01:
        raise ConfigError("--flush-interval must be at least 10 ms")
    from ssmd.bus.service import check_venues, run_archiver
    from ssmd.bus.streams import stream_specs
    from ssmd.runtime.metrics import metrics

    venues = check_venues(_venues(venue))
    serve_metrics(metrics_port)
    root = s.archive_dir
    stats = asyncio.run(
        run_archiver(
            venues,
            root,
            env=s.env,
            url=url,
            consumer=consumer,
            writer=writer,
            duration=duration_,
            metrics=metrics(),
            specs=stream_specs(s.env, environ=s.streams),
            rotation_secs=int(rotation),
            codec=codec.value,
            flush_interval=flush_interval,
            batch=batch,
        )
    )
    if json_out:
        echo_json({"archive": str(root), "venues": [st.as_dict() for st in stats]})
        return
    for st in stats:
        typer.echo(
            f"ssmd archive {st.venue}: {st.messages:,} messages, {st.lines:,} lines, "
            f"{st.bytes_in:,} bytes -> {st.bytes_out:,} compressed, {st.skipped:,} skipped "
            f"(already archived), {st.gaps:,} gap(s) ({st.missing:,} messages gone), "
            f"{st.malformed:,} malformed -> {root / st.venue}"
        )


@archive_app.command(
    "status",
    epilog="Examples:\n\n\b\n"
    "  ssmd archive status --dir /srv/ssmd/data --nats nats://127.0.0.1:4222\n"
    "  ssmd archive status --venue kraken --json",
)
def archive_status(
    venue: Venues = None,
    dir_: Dir = None,
    nats: Nats = None,
    consumer: Consumer = "archiver",
    json_out: JsonOut = False,
) -> None:
    """Archiver lag and health per venue: stream, consumer pending, last write, bytes today.

    The streams are those of the environment SSMD_ENV (default prod: PROD_KRAKEN, …).
    """
    require("nats", "bus", "ssmd archive status")
    from ssmd.bus.service import age, archive_health, check_venues
    from ssmd.bus.streams import stream_specs

    s = settings(archive_dir=dir_, nats_url=nats)
    url = need_nats(s.nats_url, "ssmd archive status")
    root = s.archive_dir
    if not root.is_dir():
        raise ConfigError(f"archive directory {root} does not exist (--dir, SSMD_ARCHIVE_DIR)")
    venues = check_venues(_venues(venue))
    health, err = asyncio.run(
        archive_health(
            venues,
            root,
            env=s.env,
            url=url,
            consumer=consumer,
            specs=stream_specs(s.env, environ=s.streams),
        )
    )
    if json_out:
        out: dict[str, Any] = {"venues": [asdict(h) for h in health], "nats_error": err}
        echo_json(out)
        return
    if err:
        typer.echo(f"NATS: {err}", err=True)
    rows: list[tuple[Any, ...]] = [
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
    rows += [
        (
            h.venue,
            h.stream,
            h.stream_messages,
            h.last_seq,
            h.consumer_pending,
            h.archived_seq,
            age(h.last_write),
            h.files_today,
            h.lines_today,
            h.bytes_today,
        )
        for h in health
    ]
    table(rows, left=2)
