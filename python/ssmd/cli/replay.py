"""``ssmd replay``: archive lines back onto NATS JetStream under another environment
(see :mod:`ssmd.replay`)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from ssmd.archive import ReadWarning
from ssmd.archive.bounds import time_bound
from ssmd.cli._app import app
from ssmd.cli.options import Dir, JsonOut, Nats, Venues, echo_json, need_nats, require, settings
from ssmd.errors import ConfigError
from ssmd.replay import ReplayResult, archive_lines, check_env, replay
from ssmd.types import Venue


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value.removesuffix("x"))
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise ConfigError(f"bad --speed {value!r}: 1 (recorded pace), 10, any factor, or max")
    return speed


@app.command(
    "replay",
    epilog="Examples:\n\n\b\n"
    "  ssmd replay --dir ./data --from 2024-03-01 --to 2024-03-01 --env replay"
    " --nats nats://127.0.0.1:4222\n"
    "  ssmd replay --venue kraken --from 2024-03-01T14:00 --to 2024-03-01T15:00 --speed max"
    " --env backtest",
)
def replay_cmd(
    env: Annotated[
        str,
        typer.Option(
            "--env",
            metavar="ENV",
            help="Subject and stream prefix to publish under ({env}.{venue}…, stream"
            " {ENV}_{VENUE}); prod only with --allow-prod.",
        ),
    ],
    dir_: Dir = None,
    date_from: Annotated[
        str | None,
        typer.Option("--from", metavar="TIME", help="A date, an ISO datetime (UTC) or ns."),
    ] = None,
    date_to: Annotated[
        str | None,
        typer.Option("--to", metavar="TIME", help="A date (included), an ISO datetime or ns."),
    ] = None,
    venue: Venues = None,
    speed: Annotated[
        str,
        typer.Option(
            "--speed", metavar="1|10|max", help="1: the recorded pace; 10: ten times faster; max."
        ),
    ] = "1",
    nats: Nats = None,
    allow_prod: Annotated[
        bool, typer.Option("--allow-prod", help="Allow --env prod (the live streams).")
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Publish archive lines onto the bus in rx order, under a chosen environment.

    The signal runner, the archiver and any JetStream consumer of that
    environment then see real captured data. Each line's subject moves to
    --env and its old stream sequence is dropped. Nothing is dropped on the
    way: reading waits for the bus. Exit status 1 if the bus did not confirm
    every line.
    """
    require("nats", "bus", "ssmd replay")
    target = check_env(env, allow_prod)
    pace = _speed(speed)
    s = settings(archive_dir=dir_, nats_url=nats)
    url = need_nats(s.nats_url, "ssmd replay")
    root = s.archive_dir
    if not root.is_dir():
        raise ConfigError(f"archive directory not found: {root}")
    first = time_bound("--from", date_from, end=False) if date_from else None
    last = time_bound("--to", date_to, end=True) if date_to else None
    venues = (
        [v.value for v in dict.fromkeys(venue)]
        if venue
        else [v.value for v in Venue if (root / v.value).is_dir()]
    )
    warnings: list[ReadWarning] = []

    def warn(w: ReadWarning) -> None:
        warnings.append(w)
        typer.echo(f"ssmd: warning: {w}", err=True)

    lines = archive_lines(
        root,
        venues,
        first[0].isoformat() if first else None,
        last[0].isoformat() if last else None,
        first[1] if first else None,
        last[1] if last else None,
        on_warning=warn,
    )
    result = asyncio.run(_run(lines, target, pace, url))
    if json_out:
        echo_json(_doc(result, target, warnings))
    else:
        per = ", ".join(f"{v} {n:,}" for v, n in sorted(result.per_venue.items()))
        typer.echo(
            f"replayed {result.lines:,} lines ({per}) onto {target}.* in {result.seconds:.1f} s,"
            f" all confirmed by JetStream"
        )
    if warnings:
        typer.echo(f"ssmd: error: {len(warnings)} damaged archive files", err=True)
        raise typer.Exit(1)


async def _run(lines: Any, env: str, speed: float | None, url: str) -> ReplayResult:
    from ssmd.bus.nats import open_bus_sink

    conns: list[Any] = []

    async def sink(venue: str) -> Any:
        s, nc = await open_bus_sink(venue, env=env, url=url)
        conns.append(nc)
        return s

    try:
        return await replay(lines, sink, env, speed=speed)
    finally:
        for nc in conns:
            await nc.close()


def _doc(r: ReplayResult, env: str, warnings: list[ReadWarning]) -> dict[str, Any]:
    return {
        "env": env,
        "lines": r.lines,
        "per_venue": r.per_venue,
        "acked": r.acked,
        "dropped": r.dropped,
        "seconds": round(r.seconds, 3),
        "first_rx": r.first_rx,
        "last_rx": r.last_rx,
        "warnings": [str(w) for w in warnings],
    }
