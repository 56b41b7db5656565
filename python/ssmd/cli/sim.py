"""``ssmd sim <venue>``: a local server speaking the venue's real protocol.

Prints the WebSocket and REST URLs on start, a one-line summary every
``--stats-every`` seconds on stderr, and stops cleanly on SIGINT/SIGTERM or
after ``--duration`` seconds. See ``docs/sim.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from pathlib import Path
from typing import Annotated

import typer

from ssmd.cli._app import app
from ssmd.errors import ConfigError
from ssmd.sim import FaultPlan, SimOptions, SimServer, start_sim
from ssmd.types import Venue

log = logging.getLogger("ssmd.sim")


def parse_rate(text: str) -> float:
    """``2000`` → 2000.0; ``max``/``inf``/``unlimited`` → inf (as fast as readers drain)."""
    if text.strip().lower() in ("max", "inf", "unlimited"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--rate must be a number or 'max', got {text!r}") from None
    if math.isnan(value) or value < 0:
        raise ConfigError(f"--rate must be >= 0, got {text!r}")
    return value


def parse_instruments(text: str | None) -> list[str] | int | None:
    """A count (``500``) or a comma-separated list of ids."""
    if text is None or not text.strip():
        return None
    if text.strip().isdigit():
        n = int(text)
        if n < 1:
            raise ConfigError("--instruments must be at least 1")
        return n
    ids = [s.strip() for s in text.split(",") if s.strip()]
    if not ids:
        raise ConfigError(f"--instruments: no ids in {text!r}")
    return ids


@app.command()
def sim(
    venue: Annotated[str, typer.Argument(help=f"Venue: {Venue.names()}.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="WebSocket (and REST) port; 0 picks a free one.")] = 0,
    rest_port: Annotated[
        int | None,
        typer.Option("--rest-port", help="Also serve REST alone on this port (0: a free one)."),
    ] = None,
    rate: Annotated[
        str, typer.Option(help="Data messages per second over all connections, or 'max'.")
    ] = "2000",
    instruments: Annotated[
        str | None,
        typer.Option(help="Universe: a count, or comma-separated ids (default: the venue's own)."),
    ] = None,
    drop: Annotated[float, typer.Option(help="Fraction of data messages dropped.")] = 0.0,
    duplicate: Annotated[float, typer.Option(help="Fraction sent twice.")] = 0.0,
    reorder: Annotated[float, typer.Option(help="Fraction swapped with the next.")] = 0.0,
    corrupt_checksum: Annotated[
        float, typer.Option(help="Fraction of Kraken book messages with a wrong CRC32.")
    ] = 0.0,
    malformed: Annotated[
        float, typer.Option(help="Fraction preceded by a broken frame (truncated / bad UTF-8).")
    ] = 0.0,
    stall_after: Annotated[
        float | None, typer.Option(help="Every this many seconds a connection's data stalls.")
    ] = None,
    stall_for: Annotated[float, typer.Option(help="Length of each stall, seconds.")] = 5.0,
    disconnect_every: Annotated[
        float | None, typer.Option(help="Close each connection after this many seconds.")
    ] = None,
    disconnect_after: Annotated[
        int | None, typer.Option(help="Close each connection after this many data messages.")
    ] = None,
    kalshi_public_key: Annotated[
        Path | None,
        typer.Option(help="Kalshi: PEM public key; upgrades must carry a valid signature."),
    ] = None,
    rest_rate: Annotated[
        float, typer.Option(help="REST requests per second before 429 + Retry-After (0: no limit).")
    ] = 0.0,
    ping_timeout: Annotated[
        float, typer.Option(help="Kraken Futures: close a connection without a ping this long.")
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Seed of data and faults.")] = 7,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until a signal).")
    ] = None,
    stats_every: Annotated[
        float, typer.Option(help="Seconds between stats lines on stderr (0: none).")
    ] = 5.0,
    log_level: Annotated[str, typer.Option(help="Log level of the ssmd.sim logger.")] = "WARNING",
) -> None:
    """Serve a venue's WebSocket and REST protocol locally, with faults on demand."""
    key = Venue.parse(venue)
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise ConfigError(f"unknown --log-level {log_level!r}")
    if duration is not None and duration <= 0:
        raise ConfigError("--duration must be > 0")
    if stats_every < 0:
        raise ConfigError("--stats-every must be >= 0")
    if kalshi_public_key is not None and key is not Venue.KALSHI:
        raise ConfigError("--kalshi-public-key is for the kalshi simulator")
    faults = FaultPlan(
        drop=drop,
        duplicate=duplicate,
        reorder=reorder,
        corrupt_checksum=corrupt_checksum,
        malformed=malformed,
        stall_after=stall_after,
        stall_for=stall_for,
        disconnect_after=disconnect_after,
        disconnect_every=disconnect_every,
    )
    options = SimOptions(rest_rate=rest_rate, ping_timeout=ping_timeout)
    pem = None
    if kalshi_public_key is not None:
        try:
            pem = kalshi_public_key.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {kalshi_public_key}: {exc.strerror}") from None
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(
        _serve(
            key,
            host=host,
            port=port,
            rest_port=rest_port,
            rate=parse_rate(rate),
            instruments=parse_instruments(instruments),
            faults=faults,
            options=options,
            seed=seed,
            pem=pem,
            duration=duration,
            stats_every=stats_every,
        )
    )


async def _serve(
    venue: Venue,
    *,
    host: str,
    port: int,
    rest_port: int | None,
    rate: float,
    instruments: list[str] | int | None,
    faults: FaultPlan,
    options: SimOptions,
    seed: int,
    pem: bytes | None,
    duration: float | None,
    stats_every: float,
) -> None:
    try:
        sim: SimServer = await start_sim(
            venue,
            host=host,
            port=port,
            rate=rate,
            instruments=instruments,
            faults=faults,
            seed=seed,
            kalshi_public_key=pem,
            rest_port=rest_port,
            options=options,
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    urls = sim.urls()
    typer.echo(f"ssmd sim {venue.value}: ws {urls['ws']}")
    typer.echo(f"ssmd sim {venue.value}: rest {urls['rest']}")
    for name, url in urls.items():
        if name not in ("ws", "rest"):
            typer.echo(f"ssmd sim {venue.value}: {name} {url}")
    deadline = loop.time() + duration if duration is not None else math.inf
    try:
        while not stop.is_set():
            wait = min(deadline - loop.time(), stats_every or math.inf)
            if wait <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), None if math.isinf(wait) else wait)
            if stats_every and not stop.is_set():
                typer.echo(sim.summary(), err=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await sim.stop()
        typer.echo(f"{sim.summary()} (stopped)", err=True)
