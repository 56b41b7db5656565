"""One ssmd capture in a process of its own, for the benches; prints one JSON object.

The connector of ``ssmd connect`` (picows, the Rust core, the archive sink or
the bus sink) receives from a simulator that is already running, and this
process reports what it measured of itself: messages/s, CPU, its peak RSS
(``VmHWM``: the process holds nothing but the capture, as ``ssmd
connect`` does; the CLI adds its argument parsing) and the pipeline latency
per line, receive time to durable (archive) or acknowledged (``--nats``).

    python benches/python/connect_capture.py kraken ws://127.0.0.1:8765/v2 \
        http://127.0.0.1:8765/0 /tmp/archive --seconds 10 --warmup 2 [--nats URL]

``--target N`` measures N messages after a warm-up of N/10 instead of a time.
``--churn K --every S`` swaps K subscribed instruments every S seconds and
samples RSS. Used by ``tools/bench_connect.py``, ``tools/bench_latency.py``
and ``bench_connect.py``; only the standard library is imported before the
capture starts, so the RSS is the capture's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from typing import Any


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    """Peak RSS of this process's address space (``VmHWM``), MiB.

    Not ``ru_maxrss``: that also counts the parent's RSS at the fork that
    started this process, so a large parent (pytest) would show as ours.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def _churn(cap: Any, k: int, every: float, samples: list[tuple[float, float]]) -> None:
    """Every ``every`` s swap ``k`` subscribed instruments for ``k`` others; sample RSS."""
    rng = random.Random(7)
    universe = sorted(cap.desired)
    reserve = set(rng.sample(universe, min(k, len(universe) // 2))) if k else set()
    cap.remove(reserve)
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(every)
        samples.append((round(time.monotonic() - t0), round(_rss_mb(), 1)))
        if k:
            out = rng.sample(sorted(cap.desired), k)
            cap.remove(out)
            cap.add(sorted(reserve))
            reserve = set(out)


async def run(a: argparse.Namespace) -> dict[str, Any]:
    from ssmd.connectors.base import InstrumentQuery
    from ssmd.connectors.registry import create
    from ssmd.runtime.capture import Capture, run_capture
    from ssmd.runtime.shutdown import StopSignal
    from ssmd.runtime.sink import ArchiveSink

    settings: dict[str, Any] = {"ws_url": a.ws, "rest_url": a.rest}
    if a.kalshi_key:
        settings.update(api_key=a.kalshi_api_key, private_key_path=a.kalshi_key)
    connector = create(a.venue, settings)
    nc = None
    sink: Any
    if a.nats:
        from ssmd.bus.nats import open_bus_sink

        sink, nc = await open_bus_sink(a.venue, env="prod", url=a.nats)
    else:
        sink = ArchiveSink(a.dir, a.venue, "bench", codec=a.codec)
    start_rss = _rss_mb()
    stop = StopSignal()
    marks: dict[str, Any] = {}
    samples: list[tuple[float, float]] = []
    tasks: list[asyncio.Task[None]] = []

    def data(cap: Capture) -> int:
        return cap.totals().get("data", 0)

    def mark(cap: Capture, name: str) -> None:
        t = cap.totals()
        marks[name] = (t.get("data", 0), t.get("bytes", 0), time.perf_counter(), _cpu())
        latency = getattr(sink, "latency", None)  # (older ssmd, for before/after runs)
        if name == "t0":
            if latency is not None:
                latency.reset()  # the warm-up does not count
            marks["flow0"] = (cap.flow.pauses, cap.flow.paused_seconds)
        else:
            marks["latency"] = latency.summary() if latency is not None else None
            marks["flow1"] = (cap.flow.pauses, cap.flow.paused_seconds)

    def started(cap: Capture) -> None:
        async def watch() -> None:
            if a.target:
                while data(cap) < a.target // 10:
                    await asyncio.sleep(0.01)
                mark(cap, "t0")
                while data(cap) < marks["t0"][0] + a.target:
                    await asyncio.sleep(0.01)
            else:
                await asyncio.sleep(a.warmup)
                mark(cap, "t0")
                await asyncio.sleep(a.seconds)
            mark(cap, "t1")
            stop.set("done")

        tasks.append(asyncio.create_task(watch()))
        if a.churn or a.every:
            tasks.append(asyncio.create_task(_churn(cap, a.churn, a.every or 10.0, samples)))

    cap = await run_capture(
        connector,
        InstrumentQuery(all=True),
        sink,
        stop=stop,
        started=started,
        duration=a.seconds + a.warmup + 600 if not a.target else 900,
        with_metrics=False,
    )
    for t in tasks:
        t.cancel()
    if nc is not None:
        await nc.close()
    (n0, b0, t0, c0), (n1, b1, t1, c1) = marks["t0"], marks["t1"]
    n, wall, cpu = n1 - n0, t1 - t0, c1 - c0
    t = cap.totals()
    out: dict[str, Any] = {
        "venue": a.venue,
        "sink": "bus" if a.nats else "archive",
        "messages": n,
        "seconds": round(wall, 2),
        "msg_per_s": round(n / wall) if wall else 0,
        "cpu_percent": round(100 * cpu / wall) if wall else 0,
        "msg_per_cpu_s": round(n / cpu) if cpu else 0,
        "MB_per_s": round((b1 - b0) / wall / 1e6, 1) if wall else 0,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_before_capture_mb": round(start_rss, 1),
        "latency": marks["latency"],
        "read_pauses": marks["flow1"][0] - marks["flow0"][0],
        "read_paused_s": round(marks["flow1"][1] - marks["flow0"][1], 2),
        "malformed": t.get("malformed", 0),
        "gaps": t.get("gaps", 0),
        "reconnects": t.get("reconnects", 0),
        "connections": len(cap.connections),
        "subscribed": len(cap.desired),
    }
    if a.nats:
        out["bus"] = sink.stats()
    else:
        out["archive_in_MB"] = round(sink.bytes_in / 1e6, 1)
        out["archive_out_MB"] = round(sink.bytes_out / 1e6, 1)
    if samples:
        out["rss_samples_mb"] = samples
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("venue")
    ap.add_argument("ws")
    ap.add_argument("rest")
    ap.add_argument("dir")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured time")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    ap.add_argument("--target", type=int, default=0, help="measure this many messages instead")
    ap.add_argument("--nats", default=None, help="publish to this NATS server (bus sink)")
    ap.add_argument("--kalshi-key", default=None, help="PEM private key for Kalshi")
    ap.add_argument("--kalshi-api-key", default="bench", help="Kalshi API key id")
    ap.add_argument("--codec", default="gzip")
    ap.add_argument("--churn", type=int, default=0, help="instruments swapped each period")
    ap.add_argument("--every", type=float, default=0.0, help="churn/RSS sample period, s")
    sys.stdout.write(json.dumps(asyncio.run(run(ap.parse_args()))) + "\n")


if __name__ == "__main__":
    main()
