"""``ssmd demo``: the main job on its embedded default, with no servers.

By default a venue simulator (``ssmd.sim``) and a live connector (the same
code as ``ssmd connect``) run for every venue in this one process for
``--duration`` seconds, over real WebSockets on loopback, through the
in-process bus (``LocalPipeline``: the archiver, and the signal runners of
``ssmd signal run`` on the same bus) into the gzip JSONL archive; then a
summary table is printed. ``--offline`` instead pushes
generated frames (``ssmd.samples``) straight through the core into the
archive, with no sockets.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from ssmd.archive import ArchiveWriter, count_lines, list_files
from ssmd.cli._app import app
from ssmd.cli.options import (
    DatabaseUrl,
    JsonOut,
    Venues,
    check_url,
    duration,
    echo_json,
    require,
    settings,
    table,
)
from ssmd.core import Processor
from ssmd.errors import ConfigError
from ssmd.samples import stream
from ssmd.types import Venue

BATCH = 1000
KRAKEN_PRECISIONS = {"BTC/USD": (1, 8), "ETH/USD": (2, 8), "SOL/USD": (2, 8)}


#: most frames ``--offline -n`` generates (they are generated per venue as they are written)
MAX_MESSAGES = 10_000_000


@app.command(
    epilog="Examples:\n\n\b\n"
    "  ssmd demo\n"
    "  ssmd demo --duration 30s --venue kraken --venue kalshi --dir ./demo-data\n"
    "  ssmd demo --offline -n 1000000 --json"
)
def demo(
    duration_: Annotated[
        float,
        typer.Option(
            "--duration",
            parser=duration,
            metavar="DURATION",
            help="How long to capture (live mode).",
            show_default="10s",
        ),
    ] = 10.0,
    rate: Annotated[
        float,
        typer.Option(
            min=1,
            max=1_000_000,
            metavar="PER_S",
            help="Messages per second each venue simulator sends (live mode).",
        ),
    ] = 5000.0,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="No sockets: generated frames straight through the core."),
    ] = False,
    messages: Annotated[
        int,
        typer.Option(
            "--messages",
            "-n",
            min=1,
            max=MAX_MESSAGES,
            metavar="N",
            help="Frames to generate in all, split over the venues (--offline).",
        ),
    ] = 200_000,
    dir_: Annotated[
        Path | None,
        typer.Option(
            "--dir", metavar="DIR", help="Archive root.", show_default="a new temporary directory"
        ),
    ] = None,
    venue: Venues = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the generators.")] = 7,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """The main job on its embedded default: simulators, connectors and the archive, no servers.

    A simulator and a live connector run for every venue in this one process
    over loopback WebSockets, through the in-process bus into the gzip JSONL
    archive, with built-in signals (volume-1m-1min, price-jump, lifecycle)
    running on the same bus; then a summary is printed (--json: one JSON
    object), their fires included. --offline pushes generated frames
    straight through the core instead. With a database (--database-url or
    DATABASE_URL), the lifecycle consumer also applies Kalshi's lifecycle
    events to a schema of the demo's own (ssmd_demo) in that database.
    """
    if duration_ < 0.5:
        raise ConfigError("--duration must be at least 0.5 s")
    chosen = list(dict.fromkeys(venue)) if venue else list(Venue)
    dsn = settings(database_url=database_url).database_url
    if dsn:
        dsn = check_url(dsn, "--database-url", ("postgresql", "postgres"))
        if not offline and Venue.KALSHI in chosen:
            require("asyncpg", "secmaster", "ssmd demo with a database")
    root = dir_ or Path(tempfile.mkdtemp(prefix="ssmd-demo-"))
    if not offline:
        _live(root, chosen, duration_, rate, seed, json_out, dsn)
        return
    per_venue = max(1, messages // len(chosen))
    if not json_out:
        typer.echo(f"ssmd demo: {per_venue:,} frames per venue -> {root}")
    done = []
    t_all = time.perf_counter()
    for v in chosen:
        if not json_out:
            typer.echo(f"  generating {v.value} ...", err=True)
        data = stream(v, per_venue, seed)  # generated as they are written: memory stays flat
        p = Processor(v.value, f"demo-{v.module}")
        if v is Venue.KRAKEN:
            for sym, (pp, qp) in KRAKEN_PRECISIONS.items():
                p.set_precision(sym, pp, qp)
        t0 = time.perf_counter()
        rx = time.time_ns()
        with ArchiveWriter(root, v.value, "demo") as w:
            for i in range(0, per_venue, BATCH):
                batch = p.process(list(itertools.islice(data, BATCH)), rx + i)
                w.write(batch.lines())
                w.flush()
            bytes_in, bytes_out = w.bytes_in, w.bytes_out
        secs = time.perf_counter() - t0
        done.append((v.value, p.counters(), bytes_in, bytes_out, secs))
    elapsed = time.perf_counter() - t_all
    kinds: Counter[tuple[str, str]] = Counter()
    for v in chosen:
        for subject, n in count_lines(list_files(root, v.value)).items():
            kinds[(v.value, subject.split(".json.", 1)[1].split(".", 1)[0])] += n
    out: list[dict[str, Any]] = [
        {
            "venue": name,
            "frames": c["frames"],
            "lines": c["data"] + c["status"] + c["unknown"] + c["malformed"],
            "raw_bytes": bin_,
            "compressed_bytes": bout,
            "gaps": c["gaps"],
            "malformed": c["malformed"],
            "seconds": round(secs, 3),
        }
        for name, c, bin_, bout, secs in done
    ]
    by_kind = {f"{v}/{k}": n for (v, k), n in sorted(kinds.items())}
    if json_out:
        echo_json({"mode": "offline", "archive": str(root), "venues": out, "kinds": by_kind})
        return
    rows: list[tuple[Any, ...]] = [
        ("venue", "frames", "lines", "raw MB", "gz MB", "ratio", "gaps", "malformed", "lines/s")
    ]
    rows += [
        (
            r["venue"],
            r["frames"],
            r["lines"],
            r["raw_bytes"] / 1e6,
            r["compressed_bytes"] / 1e6,
            r["raw_bytes"] / r["compressed_bytes"] if r["compressed_bytes"] else 0.0,
            r["gaps"],
            r["malformed"],
            int(r["lines"] / r["seconds"]) if r["seconds"] else 0,
        )
        for r in out
    ]
    table(rows)
    typer.echo("lines per kind: " + orjson.dumps(by_kind).decode())
    typer.echo(f"archive: {root}  ({elapsed:.1f} s in all; try: ssmd archive ls --dir {root})")


def _live(
    root: Path,
    venues: list[Venue],
    duration: float,
    rate: float,
    seed: int,
    json_out: bool,
    dsn: str | None,
) -> None:
    import asyncio

    if not json_out:
        typer.echo(
            f"ssmd demo: simulators + connectors for {', '.join(v.value for v in venues)}, "
            f"{duration:g} s at {rate:,.0f} msg/s each -> {root}"
        )
    results, lifecycle, fired = asyncio.run(_capture_all(root, venues, duration, rate, seed, dsn))
    life = _lifecycle_summary(lifecycle, venues, dsn)
    out: list[dict[str, Any]] = []
    kinds: Counter[tuple[str, str]] = Counter()
    for name, totals, by_kind, bin_, bout in results:
        msgs = sum(by_kind.values())
        out.append(
            {
                "venue": name,
                "frames": totals.get("frames", 0),
                "messages": msgs,
                "raw_bytes": bin_,
                "compressed_bytes": bout,
                "gaps": totals.get("gaps", 0),
                "malformed": totals.get("malformed", 0),
                "reconnects": totals.get("reconnects", 0),
                "per_second": round(msgs / duration),
            }
        )
        for k, n in by_kind.items():
            kinds[(name, k)] += n
    per_kind = {f"{v}/{k}": n for (v, k), n in sorted(kinds.items())}
    if json_out:
        echo_json(
            {
                "mode": "live",
                "archive": str(root),
                "venues": out,
                "kinds": per_kind,
                "lifecycle": life,
                "signals": fired,
            }
        )
        return
    rows: list[tuple[Any, ...]] = [
        (
            "venue",
            "frames",
            "messages",
            "raw MB",
            "gz MB",
            "gaps",
            "malformed",
            "reconnects",
            "msg/s",
        )
    ]
    rows += [
        (
            r["venue"],
            r["frames"],
            r["messages"],
            r["raw_bytes"] / 1e6,
            r["compressed_bytes"] / 1e6,
            r["gaps"],
            r["malformed"],
            r["reconnects"],
            r["per_second"],
        )
        for r in out
    ]
    table(rows)
    typer.echo("messages per kind: " + orjson.dumps(per_kind).decode())
    typer.echo("lifecycle: " + life["summary"])
    typer.echo("signals: " + fired["summary"])
    typer.echo(f"archive: {root}  (try: ssmd archive ls --dir {root} --counts)")


def _lifecycle_summary(stats: Any, venues: list[Venue], dsn: str | None) -> dict[str, Any]:
    """What the lifecycle consumer did, or why it did not run (one line in ``summary``)."""
    from ssmd.lifecycle.inprocess import DEMO_SCHEMA

    if Venue.KALSHI not in venues:
        return {"ran": False, "summary": "skipped (Kalshi not captured)"}
    if not dsn:
        return {
            "ran": False,
            "summary": "skipped (no DATABASE_URL: give --database-url to apply Kalshi's"
            f" lifecycle events to schema {DEMO_SCHEMA} of that database)",
        }
    outcomes = ", ".join(f"{n:,} {k}" for k, n in sorted(stats.outcomes.items())) or "none"
    return {
        "ran": True,
        "schema": DEMO_SCHEMA,
        "events": stats.events,
        "outcomes": dict(stats.outcomes),
        "deadletters": stats.deadletters,
        "summary": f"{stats.events:,} Kalshi event(s) from the in-process bus ({outcomes})"
        f" into schema {DEMO_SCHEMA}, {stats.deadletters:,} dead-lettered",
    }


Results = list[tuple[str, dict[str, int], dict[str, int], int, int]]


async def _capture_all(
    root: Path, venues: list[Venue], duration: float, rate: float, seed: int, dsn: str | None
) -> tuple[Results, Any, dict[str, Any]]:

    with tempfile.TemporaryDirectory(prefix="ssmd-demo-key-") as keys:  # removed at the end
        return await _capture_with(root, venues, duration, rate, seed, Path(keys), dsn)


async def _capture_with(
    root: Path,
    venues: list[Venue],
    duration: float,
    rate: float,
    seed: int,
    keydir: Path,
    dsn: str | None,
) -> tuple[Results, Any, dict[str, Any]]:
    import asyncio

    # imported here: at the top it would register `ssmd sim` ahead of its place in --help
    from ssmd.cli.sim import PRIVATE_KEY_FILE, write_key_pair
    from ssmd.connectors.base import InstrumentQuery
    from ssmd.connectors.registry import create
    from ssmd.runtime.capture import run_capture
    from ssmd.sim import start_sim

    # a throwaway key for this run: the private half signs, the simulator verifies
    public_pem = write_key_pair(keydir)[0] if Venue.KALSHI in venues else None
    sims = [
        await start_sim(
            v, rate=rate, seed=seed, kalshi_public_key=public_pem if v is Venue.KALSHI else None
        )
        for v in venues
    ]
    lifecycle: Any = None
    signals: Any = None
    bus = _demo_bus()
    try:
        scoped = None
        if dsn and Venue.KALSHI in venues:
            scoped = await _demo_secmaster(dsn, sims[venues.index(Venue.KALSHI)])
        connectors = []
        sinks: list[Any] = []
        try:
            for v, sim in zip(venues, sims, strict=True):
                settings: dict[str, object] = {"ws_url": sim.ws_url, "rest_url": sim.rest_url}
                if v is Venue.KALSHI:
                    settings |= {
                        "api_key": "demo-key",
                        "private_key_path": str(keydir / PRIVATE_KEY_FILE),
                    }
                connectors.append(create(v, settings))
                sinks.append(await _through_the_bus(root, connectors[-1], bus))
            if scoped:
                lifecycle = await _lifecycle_on(bus, scoped)
            signals = await _signals_on(bus, venues, sinks)
            captures = await asyncio.gather(
                *(
                    run_capture(
                        connector,
                        InstrumentQuery(all=True),
                        sink,
                        duration=duration,
                        writer="demo",
                        with_metrics=False,
                    )
                    for connector, sink in zip(connectors, sinks, strict=True)
                )
            )
        except BaseException:
            for consumer in (lifecycle, signals):
                if consumer is not None:
                    await consumer.cancel()
            for sink in sinks:
                with contextlib.suppress(BaseException):
                    await sink.aclose()
            raise
        stats = await lifecycle.finish() if lifecycle is not None else None
        fired = await _signals_summary(signals, bus)
    finally:
        for sim in sims:
            await sim.stop()
    return (
        [
            (c.connector.venue, c.totals(), c.kinds(), *_bytes(s))
            for c, s in zip(captures, sinks, strict=True)
        ],
        stats,
        fired,
    )


async def _demo_secmaster(dsn: str, kalshi_sim: Any) -> str:
    """The demo's own schema in the database, with the Kalshi simulator's universe synced
    into it (so its lifecycle events move markets that secmaster has); its DSN."""
    from ssmd.errors import SsmdError
    from ssmd.lifecycle.inprocess import prepare_schema
    from ssmd.secmaster.config import SecmasterSettings
    from ssmd.secmaster.sync import Job, run_job

    scoped = await prepare_schema(dsn)
    sync = SecmasterSettings.load(
        {}, database_url=scoped, urls={"kalshi": kalshi_sim.rest_url}, rates={"kalshi": 0.0}
    )
    result = await run_job(sync, Job("kalshi"))
    if not result.ok:
        raise SsmdError(f"syncing the Kalshi simulator into the demo schema: {result.errors[0]}")
    return scoped


#: the in-process bus keeps at most this much of each venue's stream (the consumers
#: are at most half of it behind: reading pauses there)
DEMO_STREAM_BYTES = 4 << 20
#: each archiver writes out every 1 MiB (or second) of lines
DEMO_FLUSH_BYTES = 1 << 20
#: the built-in signals the demo runs (the longer volume windows give the 1-minute
#: one's fires over a capture of a few seconds, and hold as many records)
DEMO_SIGNALS = ("volume-1m-1min", "price-jump", "lifecycle")


def _demo_bus() -> Any:
    """The in-process bus every capture of the demo publishes to, with the streams its
    consumers publish to (fires, dead letters); the venues' streams join as they start."""
    from ssmd.bus.memory import MemoryBus
    from ssmd.bus.streams import stream_specs

    return MemoryBus([s for s in stream_specs() if s.name in ("SIGNALS", "DEADLETTER")])


async def _through_the_bus(root: Path, connector: Any, bus: Any) -> Any:
    """A venue's sink on the in-process bus, its archiver writing to ``root``."""
    from ssmd.bus.local import LocalPipeline

    sink = LocalPipeline(
        connector.venue,
        root,
        env="prod",
        writer="demo",
        bus=bus,
        max_bytes=DEMO_STREAM_BYTES,
        flush_bytes=DEMO_FLUSH_BYTES,
    )
    await sink.start()
    return sink


async def _lifecycle_on(bus: Any, scoped: str) -> Any:
    """The lifecycle consumer reading Kalshi from the in-process bus."""
    from ssmd.lifecycle.inprocess import InProcessLifecycle

    lifecycle = InProcessLifecycle(scoped, bus)
    await lifecycle.start()
    return lifecycle


async def _signals_on(bus: Any, venues: list[Venue], sinks: list[Any]) -> Any:
    """Built-in signals over every venue of the in-process bus; each capture
    pauses reading while a runner is half a stream behind, as for its archiver."""
    from ssmd.signals import BUILTINS
    from ssmd.signals.inprocess import InProcessSignals

    chosen = [BUILTINS[s]() for s in DEMO_SIGNALS]
    signals = InProcessSignals(bus, chosen, [v.value for v in venues])
    await signals.start()
    for v, sink in zip(venues, sinks, strict=True):
        for src in signals.sources(v.value):
            sink.hold_for(src)
    return signals


async def _signals_summary(signals: Any, bus: Any) -> dict[str, Any]:
    """What the signal runners did: fires per signal and venue, as a subscriber on the
    bus's ``SIGNALS`` stream reads them."""
    from ssmd.signals.inprocess import read_fires

    stats = await signals.finish()
    fires = await read_fires(bus, durable="demo")
    per_signal: Counter[str] = Counter(f.signal for f in fires)
    per_venue: Counter[str] = Counter(f.venue for f in fires)
    records = sum(r.run_.counters()["records"] for r in signals.runners)
    errors = sum(r.run_.counters()["errors"] for r in signals.runners)
    ids = [r.run_.signal.id for r in signals.runners]
    shown = ", ".join(f"{i} {per_signal[i]:,}" for i in ids)
    return {
        "ran": True,
        "signals": ids,
        "fires": len(fires),
        "per_signal": {i: per_signal[i] for i in ids},
        "per_venue": dict(sorted(per_venue.items())),
        "records": records,
        "errors": errors,
        "published": sum(s.fires for s in stats),
        "summary": f"{len(fires):,} fire(s) of {len(ids)} built-in signals over"
        f" {records:,} records from the in-process bus ({shown})",
    }


def _bytes(sink: Any) -> tuple[int, int]:
    """Raw and compressed bytes a sink wrote (the archiver's, behind the in-process bus)."""
    archiver = getattr(sink, "archiver", None)
    if archiver is not None:
        return archiver.stats.bytes_in, archiver.stats.bytes_out
    return sink.bytes_in, sink.bytes_out
