"""Measure the bus path: simulator -> connector -> JetStream -> archiver.

Every process is separate (simulator, connector, archiver, nats-server), as
in production; a private nats-server with a file store in a temp directory
is started unless ``--nats URL`` is given.

    python tools/bench_bus.py e2e --venue kraken --seconds 20
    python tools/bench_bus.py drain --lines 1000000     # archiver alone, filled stream
    python tools/bench_bus.py baseline --lines 200000   # plain nats-py publish_async

``e2e`` prints lines/s arriving in the archive while the capture runs, then
checks zero loss by counting: lines the connector produced = lines the
server confirmed = lines in the archive, per kind equal to the connector's
counts; with the peak RSS of the connector and archiver processes and the
connector's receive-to-acknowledged latency per line (whole run, start-up
included). ``baseline`` publishes the same envelope lines one JetStream message
per line with nats-py's ``publish_async`` (the plain-client way), and the
same lines through ssmd's bus sink (micro-batches per subject).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path) -> None:
        exe = shutil.which("nats-server") or str(Path(sys.executable).with_name("nats-server"))
        self.port = _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [exe, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(root / "js")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def _sim(venue: str, rate: float, q: Any) -> None:
    async def main() -> None:
        from ssmd.sim import start_sim

        sim = await start_sim(venue, rate=rate)
        q.put((sim.ws_url, sim.rest_url))
        while True:
            await asyncio.sleep(3600)

    asyncio.run(main())


def _kalshi_key(path: Path) -> None:
    """A throwaway key (the simulator checks signatures only when given the public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _connector(venue: str, ws: str, rest: str, url: str, seconds: float, q: Any, tmp: str) -> None:
    async def main() -> dict[str, Any]:
        from ssmd.bus.nats import open_bus_sink
        from ssmd.connectors.base import InstrumentQuery
        from ssmd.connectors.registry import create
        from ssmd.runtime.capture import run_capture

        settings: dict[str, Any] = {"ws_url": ws, "rest_url": rest}
        if venue == "kalshi":
            pem = Path(tmp) / "kalshi.pem"
            _kalshi_key(pem)
            settings.update(api_key="bench", private_key_path=str(pem))
        connector = create(venue, settings)
        window = int(os.environ.get("SSMD_BENCH_WINDOW", "0")) or None
        sink, nc = await open_bus_sink(venue, env="prod", url=url, max_inflight=window)
        c0, t0 = _cpu(), time.perf_counter()
        cap = await run_capture(
            connector, InstrumentQuery(all=True), sink, duration=seconds, with_metrics=False
        )
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        await nc.close()
        t = cap.totals()
        return {
            "data": t.get("data", 0),
            "lines_written": sum(cap.kinds().values()),
            "kinds": cap.kinds(),
            "bus": sink.stats(),
            "flow": cap.flow.stats(),
            "wall": wall,
            "cpu": cpu,
            "latency": sink.latency.summary(),
            "peak_rss_mb": _peak_rss_mb(),
        }

    prof = os.environ.get("SSMD_BENCH_PROFILE")
    if prof:  # cProfile of the connector process, written to this path
        import cProfile

        pr = cProfile.Profile()
        pr.enable()
        res = asyncio.run(main())
        pr.disable()
        pr.dump_stats(prof)
        q.put(res)
        return
    q.put(asyncio.run(main()))


def _archiver(venue: str, url: str, root: str, q: Any, stop_after_idle: float) -> None:
    async def main() -> dict[str, Any]:
        from ssmd.bus.archiver import VenueArchiver
        from ssmd.bus.nats import JetStreamSource, connect, ensure_streams
        from ssmd.bus.streams import spec_for_venue, stream_specs, venue_stream

        nc = await connect(url)
        await ensure_streams(nc.jetstream(), [spec_for_venue(venue, stream_specs("prod"))])
        arch = VenueArchiver(
            JetStreamSource(nc, venue_stream(venue, "prod")), root, venue, env="prod"
        )
        stop = asyncio.Event()
        task = asyncio.create_task(arch.run(stop))
        samples = []
        last_lines, idle = -1, 0.0
        c0, t0 = _cpu(), time.perf_counter()
        first = None
        while True:
            await asyncio.sleep(0.5)
            n = arch.stats.lines
            samples.append((round(time.perf_counter() - t0, 1), n))
            if n and first is None:
                first = time.perf_counter()
            if n == last_lines:
                idle += 0.5
                if idle >= (stop_after_idle if n > 0 else 120.0):
                    break
            else:
                idle = 0.0
            last_lines = n
        stop.set()
        await task
        end = time.perf_counter() - stop_after_idle
        await nc.close()
        return {
            "lines": arch.stats.lines,
            "messages": arch.stats.messages,
            "bytes_in": arch.stats.bytes_in,
            "bytes_out": arch.stats.bytes_out,
            "gaps": arch.stats.gaps,
            "busy_s": end - (first or end),
            "cpu": _cpu() - c0,
            "samples": samples,
            "peak_rss_mb": _peak_rss_mb(),
        }

    q.put(asyncio.run(main()))


def _subject(line: bytes) -> str:
    return line.split(b'"subj":"', 1)[1].split(b'"', 1)[0].decode()


def _sample_lines(venue: str, frames: int = 20000) -> list[bytes]:
    """Envelope lines of the core's sample frames (what a connector publishes)."""
    from ssmd.core import Processor
    from ssmd.samples import frames as sample_frames

    batch = Processor(venue, "bench").process(sample_frames(venue, frames), time.time_ns())
    return batch.lines().splitlines(keepends=True)


def e2e(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    sim = ctx.Process(target=_sim, args=(args.venue, args.rate, q), daemon=True)
    sim.start()
    ws, rest = q.get(timeout=30)
    aq: Any = ctx.Queue()
    arch = ctx.Process(target=_archiver, args=(args.venue, url, str(tmp / "archive"), aq, 3.0))
    arch.start()
    time.sleep(1.5)  # archiver up and its consumer created
    cq: Any = ctx.Queue()
    conn = ctx.Process(
        target=_connector, args=(args.venue, ws, rest, url, args.seconds, cq, str(tmp))
    )
    sim_cpu0 = _proc_cpu(sim.pid or 0)
    nats_pid = getattr(args, "nats_pid", None)
    nats_cpu0 = _proc_cpu(nats_pid) if nats_pid else 0.0
    conn.start()
    c = cq.get(timeout=args.seconds + 120)
    conn.join()
    sim_cpu = _proc_cpu(sim.pid or 0) - sim_cpu0
    nats_cpu = _proc_cpu(nats_pid) - nats_cpu0 if nats_pid else None
    sim.terminate()
    a = aq.get(timeout=600)
    arch.join()
    steady = [n for t, n in a["samples"]]
    rate_window = max(
        ((steady[i + 4] - steady[i]) / 2.0 for i in range(len(steady) - 4) if steady[i] > 0),
        default=0,
    )
    windows = [
        (steady[i + 4] - steady[i]) / 2.0
        for i in range(0, len(steady) - 4, 4)
        if steady[i] > 0 and steady[i + 4] > steady[i]
    ]
    inner = sorted(windows[1:-1]) or [0.0]  # not the ramp-up, not the tail
    return {
        "venue": args.venue,
        "connector_seconds": round(c["wall"], 1),
        "connector_lines": c["bus"]["lines_in"],
        "connector_cpu_percent": round(100 * c["cpu"] / c["wall"]),
        "bus_lines_confirmed": c["bus"]["lines_acked"],
        "bus_messages": c["bus"]["published"],
        "bus_dropped_lines": c["bus"]["dropped_lines"],
        "bus_resent": c["bus"]["resent"],
        "read_paused": c["flow"],
        "archived_lines": a["lines"],
        "archive_gaps": a["gaps"],
        "zero_loss": c["bus"]["lines_in"] == c["bus"]["lines_acked"] == a["lines"]
        and c["bus"]["dropped_lines"] == 0,
        "end_to_end_lines_per_s": round(a["lines"] / c["wall"]),
        "median_2s_archive_lines_per_s": round(inner[len(inner) // 2]),
        "peak_2s_archive_lines_per_s": round(rate_window),
        "lines_per_bus_message": round(a["lines"] / max(1, a["messages"]), 1),
        "archiver_cpu_percent": round(100 * a["cpu"] / c["wall"]),
        "simulator_cpu_percent": round(100 * sim_cpu / c["wall"]),
        "nats_server_cpu_percent": round(100 * nats_cpu / c["wall"]) if nats_cpu else None,
        "connector_peak_rss_mb": c["peak_rss_mb"],
        "archiver_peak_rss_mb": a["peak_rss_mb"],
        "connector_receive_to_ack_ms": c["latency"],
    }


async def _fill(url: str, lines: int, venue: str, chunk: int = 32) -> tuple[float, int]:
    """Publish ``lines`` envelope lines through ssmd's bus sink; returns (secs, messages).

    Lines are grouped per subject within chunks of ``chunk`` consecutive lines,
    as the connector groups one core batch.
    """
    from ssmd.bus.nats import open_bus_sink

    src = _sample_lines(venue)
    window = int(os.environ.get("SSMD_BENCH_WINDOW", "0")) or None
    sink, nc = await open_bus_sink(
        venue, env="prod", url=url, max_pending_bytes=256 << 20, max_inflight=window
    )
    t0 = time.perf_counter()
    n = 0
    frame = 0
    pos = 0
    while n < lines:
        groups: dict[str, list[bytes]] = {}
        take = min(chunk, lines - n)
        if pos + take > len(src):
            pos = 0
        for line in src[pos : pos + take]:
            subj = _subject(line)
            groups.setdefault(subj, []).append(line)
        for subj, ls in groups.items():
            frame += 1
            sink.put(subj, b"".join(ls), f"fill:{frame}.0", len(ls))
            n += len(ls)
        pos += take
        await asyncio.sleep(0)  # one connector batch per loop turn: the sink sends meanwhile
        if sink.pending_bytes > 128 << 20:
            await sink.drain()
    await sink.drain()
    secs = time.perf_counter() - t0
    msgs = sink.published
    await sink.aclose()
    await nc.close()
    return secs, msgs


def drain(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    secs, msgs = asyncio.run(_fill(url, args.lines, args.venue, args.chunk))
    ctx = mp.get_context("spawn")
    aq: Any = ctx.Queue()
    arch = ctx.Process(target=_archiver, args=(args.venue, url, str(tmp / "archive"), aq, 1.0))
    arch.start()
    a = aq.get(timeout=600)
    arch.join()
    return {
        "venue": args.venue,
        "filled_lines": args.lines,
        "fill_messages": msgs,
        "fill_lines_per_s": round(args.lines / secs),
        "archived_lines": a["lines"],
        "drain_seconds": round(a["busy_s"], 2),
        "drain_lines_per_s": round(a["lines"] / a["busy_s"]) if a["busy_s"] else None,
        "drain_bus_messages_per_s": round(a["messages"] / a["busy_s"]) if a["busy_s"] else None,
        "archiver_cpu_s": round(a["cpu"], 2),
        "MB_in": round(a["bytes_in"] / 1e6, 1),
        "MB_out": round(a["bytes_out"] / 1e6, 1),
    }


async def _baseline(url: str, lines: int, venue: str) -> dict[str, Any]:
    import nats

    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import spec_for_venue, stream_specs

    src = _sample_lines(venue)
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=8000)
    await ensure_streams(js, [spec_for_venue(venue, stream_specs("prod"))])
    t0, c0 = time.perf_counter(), _cpu()
    futs = []
    for i in range(lines):
        line = src[i % len(src)]
        subj = _subject(line)
        futs.append(await js.publish_async(subj, line, headers={"Nats-Msg-Id": f"b:{i}"}))
        if len(futs) >= 8000:
            await asyncio.gather(*futs)
            futs.clear()
    await asyncio.gather(*futs)
    secs, cpu = time.perf_counter() - t0, _cpu() - c0
    await nc.close()
    return {
        "lines": lines,
        "seconds": round(secs, 2),
        "lines_per_s": round(lines / secs),
        "cpu_s": round(cpu, 2),
    }


def baseline(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    plain = asyncio.run(_baseline(url, args.lines, args.venue))
    secs, msgs = asyncio.run(_fill(url, args.lines, args.venue, args.chunk))
    return {
        "venue": args.venue,
        "nats_py_publish_async_lines_per_s": plain["lines_per_s"],
        "ssmd_bus_sink_lines_per_s": round(args.lines / secs),
        "ssmd_bus_messages": msgs,
        "ratio": round(args.lines / secs / plain["lines_per_s"], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["e2e", "drain", "baseline"])
    ap.add_argument("--venue", default="kraken")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=float("inf"))
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--chunk", type=int, default=32, help="lines per connector batch (fill)")
    ap.add_argument("--nats", default=None, help="use this server instead of a private one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssmd-bench-bus-") as d:
        tmp = Path(d)
        server = None if args.nats else Server(tmp)
        url = args.nats or (server.url if server else "")
        args.nats_pid = server.proc.pid if server else None
        try:
            fn = {"e2e": e2e, "drain": drain, "baseline": baseline}[args.mode]
            print(json.dumps(fn(args, url, tmp), indent=1))
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
