"""Measure one connector process receiving from the simulator over loopback.

The simulator runs in its own process (``--rate inf``: as fast as the
connector drains); this process runs ``ssmd connect``'s capture into the
embedded archive for ``--seconds`` and prints messages/s, MB/s, CPU use and
RSS of the connector process alone.

    python tools/bench_connect.py kraken --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import tempfile
import time
from typing import Any


def _sim(venue: str, rate: float, instruments: int | None, q: Any) -> None:
    async def main() -> None:
        from ssmd.sim import start_sim

        sim = await start_sim(venue, rate=rate, instruments=instruments)
        q.put((sim.ws_url, sim.rest_url))
        while True:
            await asyncio.sleep(3600)

    asyncio.run(main())


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _run(venue: str, ws: str, rest: str, seconds: float, root: str) -> dict[str, Any]:
    from ssmd.connectors.base import InstrumentQuery
    from ssmd.connectors.registry import create
    from ssmd.runtime.capture import run_capture
    from ssmd.runtime.sink import ArchiveSink

    connector = create(venue, {"ws_url": ws, "rest_url": rest})
    sink = ArchiveSink(root, venue, "bench")
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    cap = await run_capture(
        connector, InstrumentQuery(all=True), sink, duration=seconds, with_metrics=False
    )
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    t = cap.totals()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {
        "venue": venue,
        "seconds": round(wall, 1),
        "messages": t.get("data", 0),
        "msg_per_s": round(t.get("data", 0) / wall),
        "frames_per_s": round(t.get("frames", 0) / wall),
        "MB_per_s": round(t.get("bytes", 0) / wall / 1e6, 1),
        "cpu_percent": round(100 * cpu / wall),
        "msg_per_cpu_s": round(t.get("data", 0) / cpu) if cpu else None,
        "rss_mb": round(_rss_mb()),
        "malformed": t.get("malformed", 0),
        "gaps": t.get("gaps", 0),
        "archive_in_MB": round(sink.bytes_in / 1e6, 1),
        "archive_out_MB": round(sink.bytes_out / 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("venue")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=float("inf"))
    ap.add_argument("--instruments", type=int, default=None)
    args = ap.parse_args()
    q: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(
        target=_sim, args=(args.venue, args.rate, args.instruments, q), daemon=True
    )
    proc.start()
    try:
        ws, rest = q.get(timeout=30)
        with tempfile.TemporaryDirectory(prefix="ssmd-bench-") as root:
            out = asyncio.run(_run(args.venue, ws, rest, args.seconds, root))
        print(json.dumps(out))
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
