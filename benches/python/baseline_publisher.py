"""The plain nats-py publisher that ssmd's bus path is measured against; prints one JSON object.

What one would write without ssmd: a ``websockets`` client reading the
simulator, a receive stamp per frame, stdlib ``json`` per frame, an envelope
per message written with ``json.dumps``, and nats-py's JetStream
``publish_async`` per message (with a ``Nats-Msg-Id``), the acknowledgement
taken from the future it returns. Latency is per message, from the receive
stamp to the acknowledgement, the same definition as ssmd's
``ssmd_pipeline_latency_seconds{stage="acked"}``. Only the venue protocol
(discovery, subscribe messages) comes from ssmd.

    python benches/python/baseline_publisher.py kraken ws://127.0.0.1:8765/v2 \
        http://127.0.0.1:8765/0 nats://127.0.0.1:4222 --seconds 10 --warmup 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from typing import Any


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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


async def run(a: argparse.Namespace) -> dict[str, Any]:
    import httpx
    import nats
    import websockets

    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import spec_for_venue, stream_specs
    from ssmd.connectors.base import InstrumentQuery
    from ssmd.connectors.registry import create
    from ssmd.runtime.latency import LatencyHistogram

    connector = create(a.venue, {"ws_url": a.ws, "rest_url": a.rest})
    async with httpx.AsyncClient() as http:
        res = await connector.resolve(InstrumentQuery(all=True), http)
    session = connector.new_session(0)
    requests = session.on_open() + session.subscribe(
        res.instruments[: connector.config.max_per_connection]
    )
    nc = await nats.connect(a.nats)
    js = nc.jetstream(publish_async_max_pending=a.max_pending)
    await ensure_streams(js, [spec_for_venue(a.venue, stream_specs("prod"))])
    hist = LatencyHistogram()
    prefix = f"prod.{a.venue}.json."
    counts = {"received": 0, "acked": 0, "errors": 0, "closed": 0}
    closed = ""
    marks: dict[str, tuple[int, float, float]] = {}
    t_start = time.perf_counter()

    def done(fut: asyncio.Future[Any], rx: int) -> None:
        if fut.cancelled() or fut.exception() is not None:
            counts["errors"] += 1
            return
        counts["acked"] += 1
        hist.observe_since(rx, time.time_ns())

    n = 0
    async with websockets.connect(a.ws, max_size=None, compression=None) as ws:
        for m in requests:
            await ws.send(m.decode())
        while True:
            try:
                raw = await ws.recv(decode=False)
            except websockets.ConnectionClosed as exc:  # a venue drops a reader that lags
                counts["closed"] = 1
                closed = str(exc)
                marks.setdefault("t0", (counts["received"], time.perf_counter(), _cpu()))
                marks["t1"] = (counts["received"], time.perf_counter(), _cpu())
                break
            rx = time.time_ns()
            now = time.perf_counter()
            if "t0" not in marks and now - t_start >= a.warmup:
                hist.reset()
                marks["t0"] = (counts["received"], now, _cpu())
            if "t0" in marks and now - marks["t0"][1] >= a.seconds:
                marks["t1"] = (counts["received"], now, _cpu())
                break
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            for msg in obj if isinstance(obj, list) else [obj]:
                if not isinstance(msg, dict):
                    continue
                kind = msg.get("channel") or msg.get("feed") or msg.get("type") or "unknown"
                n += 1
                env = json.dumps({"rx": rx, "conn": "b", "subj": prefix + kind, "msg": msg})
                fut = await js.publish_async(
                    prefix + str(kind), env.encode(), headers={"Nats-Msg-Id": f"b:{rx}:{n}"}
                )
                fut.add_done_callback(lambda f, rx=rx: done(f, rx))
                counts["received"] += 1
    summary = hist.summary()  # what was acknowledged within the measured time
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(js.publish_async_completed(), 30)
    await nc.close()
    (n0, t0, c0), (n1, t1, c1) = marks["t0"], marks["t1"]
    wall, cpu = t1 - t0, c1 - c0
    return {
        "venue": a.venue,
        "publisher": "websockets + json + nats-py publish_async",
        "messages": n1 - n0,
        "seconds": round(wall, 2),
        "msg_per_s": round((n1 - n0) / wall) if wall else 0,
        "cpu_percent": round(100 * cpu / wall) if wall else 0,
        "peak_rss_mb": _peak_rss_mb(),
        "latency": summary,
        "errors": counts["errors"],
        "closed_by_venue": closed or None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("venue")
    ap.add_argument("ws")
    ap.add_argument("rest")
    ap.add_argument("nats")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--max-pending", type=int, default=4000, help="publish_async window")
    sys.stdout.write(json.dumps(asyncio.run(run(ap.parse_args()))) + "\n")


if __name__ == "__main__":
    main()
