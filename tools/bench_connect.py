"""Measure one connector process receiving from the simulator over loopback.

The simulator runs in its own process (``--rate inf``: as fast as the
connector drains); ssmd's capture runs in another
(``benches/python/connect_capture.py``: nothing but the capture, as in
``ssmd connect``) into the embedded archive, warms up for ``--warmup``
seconds, and reports for the next ``--seconds``: messages/s, MB/s, CPU use,
its peak RSS (``ru_maxrss``) and the receive-to-durable latency per line.
``--baseline`` then runs, against the same simulator, the plain Python
connector of ``benches/python/baseline_connector.py`` (stdlib ``json`` per
frame, envelope built with ``json.dumps``, ``gzip`` level 6 file), once on
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
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCHES = Path(__file__).resolve().parent.parent / "benches" / "python"
sys.path.insert(0, str(BENCHES))


def _sim(venue: str, rate: float, instruments: int | None, q: Any, pub: bytes | None) -> None:
    async def main() -> None:
        from ssmd.sim import start_sim

        sim = await start_sim(venue, rate=rate, instruments=instruments, kalshi_public_key=pub)
        q.put((sim.ws_url, sim.rest_url))
        while True:
            await asyncio.sleep(3600)

    asyncio.run(main())


def _capture(venue: str, ws: str, rest: str, root: str, args: argparse.Namespace) -> Any:
    """ssmd's capture in a process of its own (``benches/python/connect_capture.py``)."""
    cmd = [sys.executable, str(BENCHES / "connect_capture.py"), venue, ws, rest, root]
    cmd += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    if venue == "kalshi":
        cmd += ["--kalshi-key", f"{root}/kalshi.pem"]
    if args.churn or args.every:
        cmd += ["--churn", str(args.churn), "--every", str(args.every or 10.0)]
    if os.environ.get("SSMD_BENCH_CODEC"):
        cmd += ["--codec", os.environ["SSMD_BENCH_CODEC"]]
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=args.seconds + 900
    )
    if out.returncode != 0:
        raise SystemExit(f"capture failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("venue")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=float("inf"))
    ap.add_argument("--instruments", type=int, default=None)
    ap.add_argument("--churn", type=int, default=0, help="instruments swapped each period")
    ap.add_argument("--every", type=float, default=0.0, help="churn/RSS sample period, s")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
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
            print(json.dumps(_capture(args.venue, ws, rest, root, args)))
            if args.baseline:
                from baseline_connector import CLIENTS, run_plain

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
