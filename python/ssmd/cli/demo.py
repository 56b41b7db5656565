"""``ssmd demo``: the main job on its embedded default, with no servers.

By default a venue simulator (``ssmd.sim``) and a live connector (the same
code as ``ssmd connect``) run for every venue in this one process for
``--duration`` seconds, over real WebSockets on loopback, into the gzip JSONL
archive; then a summary table is printed. ``--offline`` instead pushes
generated frames (``ssmd.samples``) straight through the core into the
archive, with no sockets.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import orjson
import typer

from ssmd.archive import ArchiveWriter, count_lines, list_files
from ssmd.cli._app import app
from ssmd.core import Processor
from ssmd.samples import frames
from ssmd.types import Venue

BATCH = 1000
KRAKEN_PRECISIONS = {"BTC/USD": (1, 8), "ETH/USD": (2, 8), "SOL/USD": (2, 8)}


@app.command()
def demo(
    duration: Annotated[
        float, typer.Option(min=0.5, help="Seconds to capture (live mode).")
    ] = 10.0,
    rate: Annotated[
        float,
        typer.Option(min=1, help="Messages per second each venue simulator sends (live mode)."),
    ] = 5000.0,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="No sockets: generated frames straight through the core."),
    ] = False,
    messages: Annotated[
        int,
        typer.Option(
            "--messages", "-n", min=1, help="Frames to generate in all, split over the venues."
        ),
    ] = 200_000,
    archive: Annotated[
        Path | None,
        typer.Option("--archive", help="Archive directory (default: a new temporary directory)."),
    ] = None,
    venue: Annotated[
        list[str] | None,
        typer.Option("--venue", help=f"Only these venues (repeatable): {Venue.names()}."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample generator.")] = 7,
) -> None:
    """Capture every venue from its simulator into an archive, then summarize."""
    chosen = list(dict.fromkeys(Venue.parse(v) for v in venue)) if venue else list(Venue)
    root = archive or Path(tempfile.mkdtemp(prefix="ssmd-demo-"))
    if not offline:
        _live(root, chosen, duration, rate, seed)
        return
    per_venue = max(1, messages // len(chosen))
    typer.echo(f"ssmd demo: {per_venue:,} frames per venue -> {root}")
    rows = []
    t_all = time.perf_counter()
    for v in chosen:
        typer.echo(f"  generating {v.value} ...", err=True)
        data = frames(v, per_venue, seed)
        p = Processor(v.value, f"demo-{v.module}")
        if v is Venue.KRAKEN:
            for sym, (pp, qp) in KRAKEN_PRECISIONS.items():
                p.set_precision(sym, pp, qp)
        t0 = time.perf_counter()
        rx = time.time_ns()
        with ArchiveWriter(root, v.value, "demo") as w:
            for i in range(0, len(data), BATCH):
                batch = p.process(data[i : i + BATCH], rx + i)
                w.write(batch.lines())
                w.flush()
            bytes_in, bytes_out = w.bytes_in, w.bytes_out
        secs = time.perf_counter() - t0
        rows.append((v.value, p.counters(), bytes_in, bytes_out, secs))
    elapsed = time.perf_counter() - t_all
    kinds: Counter[tuple[str, str]] = Counter()
    for v in chosen:
        for subject, n in count_lines(list_files(root, v.value)).items():
            kinds[(v.value, subject.split(".json.", 1)[1].split(".", 1)[0])] += n
    _print_table(rows, kinds)
    typer.echo(f"archive: {root}  ({elapsed:.1f} s in all; try: ssmd archive ls --dir {root})")


def _live(root: Path, venues: list[Venue], duration: float, rate: float, seed: int) -> None:
    import asyncio

    typer.echo(
        f"ssmd demo: simulators + connectors for {', '.join(v.value for v in venues)}, {duration:g} s at {rate:,.0f} msg/s each -> {root}"
    )
    results = asyncio.run(_capture_all(root, venues, duration, rate, seed))
    head = f"{'venue':<15}{'frames':>9}{'messages':>10}{'raw MB':>8}{'gz MB':>7}{'gaps':>6}{'malf':>6}{'reconn':>7}{'msg/s':>9}"
    typer.echo(head)
    typer.echo("-" * len(head))
    kinds: Counter[tuple[str, str]] = Counter()
    for name, totals, by_kind, bin_, bout in results:
        msgs = sum(by_kind.values())
        typer.echo(
            f"{name:<15}{totals.get('frames', 0):>9,}{msgs:>10,}{bin_ / 1e6:>8.1f}{bout / 1e6:>7.2f}"
            f"{totals.get('gaps', 0):>6}{totals.get('malformed', 0):>6}{totals.get('reconnects', 0):>7}"
            f"{msgs / duration:>9,.0f}"
        )
        for k, n in by_kind.items():
            kinds[(name, k)] += n
    typer.echo(
        "messages per kind: "
        + orjson.dumps({f"{v}/{k}": n for (v, k), n in sorted(kinds.items())}).decode()
    )
    typer.echo(f"archive: {root}  (try: ssmd archive ls --dir {root} --counts)")


async def _capture_all(
    root: Path, venues: list[Venue], duration: float, rate: float, seed: int
) -> list[tuple[str, dict[str, int], dict[str, int], int, int]]:
    import asyncio

    from ssmd.connectors.base import InstrumentQuery
    from ssmd.connectors.registry import create
    from ssmd.runtime.capture import run_capture
    from ssmd.runtime.sink import ArchiveSink
    from ssmd.sim import start_sim

    keydir = Path(tempfile.mkdtemp(prefix="ssmd-demo-key-"))
    public_pem = _throwaway_kalshi_key(keydir) if Venue.KALSHI in venues else None
    sims = [
        await start_sim(
            v, rate=rate, seed=seed, kalshi_public_key=public_pem if v is Venue.KALSHI else None
        )
        for v in venues
    ]
    try:
        jobs = []
        sinks = []
        for v, sim in zip(venues, sims, strict=True):
            settings: dict[str, object] = {"ws_url": sim.ws_url, "rest_url": sim.rest_url}
            if v is Venue.KALSHI:
                settings |= {"api_key": "demo-key", "private_key_path": str(keydir / "kalshi.pem")}
            connector = create(v, settings)
            sink = ArchiveSink(root, connector.venue, "demo")
            sinks.append(sink)
            jobs.append(
                run_capture(
                    connector,
                    InstrumentQuery(all=True),
                    sink,
                    duration=duration,
                    writer="demo",
                    with_metrics=False,
                )
            )
        captures = await asyncio.gather(*jobs)
    finally:
        for sim in sims:
            await sim.stop()
    return [
        (c.connector.venue, c.totals(), c.kinds(), s.bytes_in, s.bytes_out)
        for c, s in zip(captures, sinks, strict=True)
    ]


def _throwaway_kalshi_key(keydir: Path) -> bytes:
    """A fresh RSA key for this run: the private half signs, the simulator verifies."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = keydir / "kalshi.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _print_table(
    rows: list[tuple[str, dict[str, int], int, int, float]], kinds: Counter[tuple[str, str]]
) -> None:
    head = f"{'venue':<15}{'frames':>9}{'lines':>9}{'raw MB':>9}{'gz MB':>8}{'ratio':>7}{'gaps':>6}{'malf':>6}{'msg/s':>11}"
    typer.echo(head)
    typer.echo("-" * len(head))
    for name, c, bin_, bout, secs in rows:
        lines = c["data"] + c["status"] + c["unknown"] + c["malformed"]
        ratio = bin_ / bout if bout else 0.0
        typer.echo(
            f"{name:<15}{c['frames']:>9,}{lines:>9,}{bin_ / 1e6:>9.1f}{bout / 1e6:>8.2f}{ratio:>7.1f}"
            f"{c['gaps']:>6}{c['malformed']:>6}{lines / secs if secs else 0:>11,.0f}"
        )
    typer.echo(
        "lines per kind: "
        + orjson.dumps({f"{v}/{k}": n for (v, k), n in sorted(kinds.items())}).decode()
    )
