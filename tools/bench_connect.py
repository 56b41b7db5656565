"""Measure one connector process receiving from the simulator over loopback.

The simulator runs in its own process (``--rate inf``: as fast as the
connector drains); this process runs ``ssmd connect``'s capture into the
embedded archive for ``--seconds`` and prints messages/s, MB/s, CPU use and
RSS of the connector process alone. ``--baseline`` then runs, against the
same simulator, the plain Python connector of
``benches/python/baseline_connector.py`` (stdlib ``json`` per frame,
envelope built with ``json.dumps``, ``gzip`` level 6 file), once on
``websockets`` and once on ``picows``: the comparison measured in the same
run.

    python tools/bench_connect.py kraken --seconds 20
    python tools/bench_connect.py kraken --instruments 10000 --rate 50000 \
        --churn 200 --every 5 --seconds 600        # RSS under subscription churn
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches" / "python"))
from baseline_connector import CLIENTS, run_plain


def _sim(venue: str, rate: float, instruments: int | None, q: Any, pub: bytes | None) -> None:
    async def main() -> None:
        from ssmd.sim import start_sim

        sim = await start_sim(venue, rate=rate, instruments=instruments, kalshi_public_key=pub)
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


async def _churn(cap: Any, k: int, every: float, rss: list[tuple[float, float]]) -> None:
    """Every ``every`` s swap ``k`` subscribed instruments for ``k`` others; sample RSS."""
    rng = random.Random(7)
    universe = sorted(cap.desired)
    reserve = set(rng.sample(universe, min(k, len(universe) // 2))) if k else set()
    cap.remove(reserve)
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(every)
        rss.append((round(time.monotonic() - t0), _rss_mb()))
        if k:
            out = rng.sample(sorted(cap.desired), k)
            cap.remove(out)
            cap.add(sorted(reserve))
            reserve = set(out)


async def _run(
    venue: str, ws: str, rest: str, seconds: float, root: str, churn: int, every: float
) -> dict[str, Any]:
    from ssmd.connectors.base import InstrumentQuery
    from ssmd.connectors.registry import create
    from ssmd.runtime.capture import run_capture
    from ssmd.runtime.sink import ArchiveSink

    settings: dict[str, Any] = {"ws_url": ws, "rest_url": rest}
    if venue == "kalshi":
        settings.update(api_key="bench", private_key_path=f"{root}/kalshi.pem")
    connector = create(venue, settings)
    sink = ArchiveSink(root, venue, "bench", codec=os.environ.get("SSMD_BENCH_CODEC", "gzip"))
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    rss: list[tuple[float, float]] = []
    tasks: list[asyncio.Task[None]] = []

    def started(cap: Any) -> None:
        tasks.append(asyncio.create_task(_churn(cap, churn, every, rss)))

    cap = await run_capture(
        connector,
        InstrumentQuery(all=True),
        sink,
        duration=seconds,
        with_metrics=False,
        started=started,
    )
    for t in tasks:
        t.cancel()
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
        "connections": len(cap.connections),
        "subscribed": len(cap.desired),
        "reconnects": t.get("reconnects", 0),
        "rss_samples_mb": rss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("venue")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=float("inf"))
    ap.add_argument("--instruments", type=int, default=None)
    ap.add_argument("--churn", type=int, default=0, help="instruments swapped each period")
    ap.add_argument("--every", type=float, default=10.0, help="churn/RSS sample period, s")
    ap.add_argument("--baseline", action="store_true", help="also run the plain Python connector")
    args = ap.parse_args()
    pub = None
    pem = b""
    if args.venue == "kalshi":  # a throwaway key: the simulator verifies signatures
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        pub = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    q: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(
        target=_sim, args=(args.venue, args.rate, args.instruments, q, pub), daemon=True
    )
    proc.start()
    try:
        ws, rest = q.get(timeout=30)
        with tempfile.TemporaryDirectory(prefix="ssmd-bench-") as root:
            if pem:
                with open(f"{root}/kalshi.pem", "wb") as f:
                    f.write(pem)
            out = asyncio.run(
                _run(args.venue, ws, rest, args.seconds, root, args.churn, args.every)
            )
            print(json.dumps(out))
            if args.baseline:
                settings: dict[str, Any] = {"ws_url": ws, "rest_url": rest}
                if pem:
                    settings.update(api_key="bench", private_key_path=f"{root}/kalshi.pem")
                for client in CLIENTS:  # websockets, then picows (the tighter baseline)
                    base = asyncio.run(
                        run_plain(
                            args.venue, settings, Path(root), client=client, seconds=args.seconds
                        )
                    )
                    print(json.dumps(base))
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
