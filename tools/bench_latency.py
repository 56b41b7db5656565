"""Measure pipeline latency per message: receive time to durable, and to acknowledged.

For each rate (messages/s the simulator sends; ``inf``: as fast as the
connector reads), with every process separate:

* ``ssmd -> archive``: ``ssmd connect``'s capture into the embedded archive;
  receive stamp (``rx``) to the fsync of the member that holds the line;
* ``ssmd -> JetStream``: the same capture publishing to nats-server, with an
  archiver consuming the stream as in production; ``rx`` to JetStream's
  acknowledgement;
* ``nats-py -> JetStream``: a plain publisher on the same simulator and server
  (``benches/python/baseline_publisher.py``: websockets, json, one
  ``publish_async`` per message), its receive stamp to its acknowledgement.

Buffers are as shipped. Each run warms up, then measures for ``--seconds``;
the figures are per line (message), in milliseconds, with the rate the
connector actually received and its peak RSS.

    python tools/bench_latency.py --venue kraken --seconds 10
    python tools/bench_latency.py --rates 10000 --nats nats://127.0.0.1:4222 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHES = HERE.parent / "benches" / "python"
sys.path.insert(0, str(HERE))


def _sim(venue: str, rate: float, q: Any) -> None:
    async def main() -> None:
        from ssmd.sim import start_sim

        sim = await start_sim(venue, rate=rate)
        q.put((sim.ws_url, sim.rest_url))
        while True:
            await asyncio.sleep(3600)

    asyncio.run(main())


def _archiver(venue: str, url: str, root: str) -> None:
    """The archiver service on ``venue``'s stream until SIGTERM."""

    async def main() -> None:
        from ssmd.bus.archiver import VenueArchiver
        from ssmd.bus.nats import JetStreamSource, connect, ensure_streams
        from ssmd.bus.streams import spec_for_venue, stream_specs, venue_stream

        nc = await connect(url)
        await ensure_streams(nc.jetstream(), [spec_for_venue(venue, stream_specs("prod"))])
        arch = VenueArchiver(
            JetStreamSource(nc, venue_stream(venue, "prod")), root, venue, env="prod"
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await arch.run(stop)
        await nc.close()

    asyncio.run(main())


def _child(script: str, args: list[str], timeout: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(BENCHES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{script} failed ({out.returncode}): {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _row(label: str, rate: str, r: dict[str, Any]) -> dict[str, Any]:
    lat = r["latency"]
    return {
        "rate": rate,
        "path": label,
        "msg_per_s": r["msg_per_s"],
        "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"],
        "max_ms": lat["max_ms"],
        "lines": lat["lines"],
        "peak_rss_mb": r.get("peak_rss_mb"),
        "cpu_percent": r.get("cpu_percent"),
    }


def measure(args: argparse.Namespace, url: str, tmp: Path) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    rows = []
    timing = ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    limit = args.seconds + args.warmup + 120
    for rate_s in args.rates.split(","):
        rate = float(rate_s)
        q: Any = ctx.Queue()
        sim = ctx.Process(target=_sim, args=(args.venue, rate, q), daemon=True)
        sim.start()
        arch = None
        try:
            ws, rest = q.get(timeout=60)
            where = [args.venue, ws, rest]
            label = "full speed" if rate == float("inf") else f"{rate:,.0f}/s"
            if "archive" in args.paths:
                r = _child("connect_capture.py", [*where, str(tmp / "a"), *timing], limit)
                rows.append(_row("ssmd -> archive (durable)", label, r))
            if not args.no_archiver:
                arch = ctx.Process(
                    target=_archiver, args=(args.venue, url, str(tmp / "b")), daemon=True
                )
                arch.start()
                time.sleep(1.5)  # its consumer is created
            if "bus" in args.paths:
                r = _child(
                    "connect_capture.py",
                    [*where, str(tmp / "a"), *timing, "--nats", url],
                    limit,
                )
                rows.append(_row("ssmd -> JetStream (acked)", label, r))
            if "baseline" in args.paths:
                r = _child("baseline_publisher.py", [*where, url, *timing], limit)
                rows.append(_row("nats-py publish_async -> JetStream (acked)", label, r))
        finally:
            if arch is not None:
                arch.terminate()
                arch.join(30)
            sim.terminate()
            sim.join(10)
        for row in rows[-3:]:
            print(json.dumps(row), file=sys.stderr)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = "| rate | path | received msg/s | p50 ms | p99 ms | max ms | peak RSS MB |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['rate']} | {r['path']} | {r['msg_per_s']:,} | {r['p50_ms']:g} | "
            f"{r['p99_ms']:g} | {r['max_ms']:g} | {r['peak_rss_mb']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venue", default="kraken")
    ap.add_argument("--rates", default="1000,10000,100000,inf")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--paths", default="archive,bus,baseline")
    ap.add_argument("--nats", default=None, help="use this server instead of a private one")
    ap.add_argument("--no-archiver", action="store_true", help="no archiver on the stream")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()
    from bench_bus import Server

    with tempfile.TemporaryDirectory(prefix="ssmd-bench-latency-") as d:
        tmp = Path(d)
        server = None if args.nats else Server(tmp)
        url = args.nats or (server.url if server else "")
        try:
            rows = measure(args, url, tmp)
        finally:
            if server is not None:
                server.stop()
    if args.json:
        print(json.dumps(rows))
    else:
        print(table(rows))
    print(f"load average after the run: {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
