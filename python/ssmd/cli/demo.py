"""``ssmd demo``: the main job on its embedded default, with no servers.

Sample frames shaped like every venue's wire (``ssmd.samples``) go through
the Rust core (parse, route, integrity, envelope) into the gzip JSONL
archive, and a summary table is printed. A later change replaces the
generator with the venue simulator and live connectors.
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
from ssmd.errors import ConfigError
from ssmd.samples import VENUES, frames

BATCH = 1000
KRAKEN_PRECISIONS = {"BTC/USD": (1, 8), "ETH/USD": (2, 8), "SOL/USD": (2, 8)}


@app.command()
def demo(
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
        list[str] | None, typer.Option("--venue", help="Only these venues (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample generator.")] = 7,
) -> None:
    """Replay generated venue frames through the core into an archive and summarize."""
    chosen = [v.replace("-", "_") for v in venue or []] or list(VENUES)
    for v in chosen:
        if v not in VENUES:
            raise ConfigError(
                f"unknown venue {v!r} (known: {', '.join(x.replace('_', '-') for x in VENUES)})"
            )
    root = archive or Path(tempfile.mkdtemp(prefix="ssmd-demo-"))
    per_venue = max(1, messages // len(chosen))
    typer.echo(f"ssmd demo: {per_venue:,} frames per venue -> {root}")
    rows = []
    t_all = time.perf_counter()
    for v in chosen:
        typer.echo(f"  generating {v} ...", err=True)
        data = frames(v, per_venue, seed)
        p = Processor(v, f"demo-{v}")
        if v == "kraken":
            for sym, (pp, qp) in KRAKEN_PRECISIONS.items():
                p.set_precision(sym, pp, qp)
        name = v.replace("_", "-")
        t0 = time.perf_counter()
        rx = time.time_ns()
        with ArchiveWriter(root, name, "demo") as w:
            for i in range(0, len(data), BATCH):
                batch = p.process(data[i : i + BATCH], rx + i)
                w.write(batch.lines())
                w.flush()
            bytes_in, bytes_out = w.bytes_in, w.bytes_out
        secs = time.perf_counter() - t0
        rows.append((name, p.counters(), bytes_in, bytes_out, secs))
    elapsed = time.perf_counter() - t_all
    kinds: Counter[tuple[str, str]] = Counter()
    for v in chosen:
        name = v.replace("_", "-")
        for subject, n in count_lines(list_files(root, name)).items():
            kinds[(name, subject.split(".json.", 1)[1].split(".", 1)[0])] += n
    _print_table(rows, kinds)
    typer.echo(f"archive: {root}  ({elapsed:.1f} s in all; try: ssmd archive ls --dir {root})")


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
