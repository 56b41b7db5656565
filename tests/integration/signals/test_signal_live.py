"""``ssmd signal run`` against real NATS: live fires equal a backtest of what the archiver
wrote; a runner killed with SIGKILL over and over neither fires twice nor misses a fire."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from helpers import async_wait_until
from signal_helpers import (
    T0,
    S,
    kalshi_frames,
    kalshi_trade,
    kraken_frames,
    publish,
    stored_fires,
    stream_lines,
)
from ssmd.bus.service import run_archiver
from ssmd.core import stamp_seq
from ssmd.runtime.shutdown import StopSignal
from ssmd.signals import SignalRun, find_signal
from ssmd.signals.backtest import Backtest, run_backtest
from ssmd.signals.live import SignalRunner

pytestmark = pytest.mark.integration

THRESHOLD = "3000"


def fire_key(body: bytes) -> tuple[int, str]:
    d = orjson.loads(body)
    return d["rx"], d["instrument"]


async def test_live_fires_equal_a_backtest_of_the_archive(
    nats_url: str, bus_env: str, signal_dir: tuple[Path, str], js: Any, tmp_path: Path
) -> None:
    folder, sid = signal_dir
    src = find_signal(sid, folder)
    run = SignalRun(src.make({"threshold": THRESHOLD}))
    runner = SignalRunner(run, nats_url, env=bus_env, venues=["kalshi", "kraken"], batch=100)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await async_wait_until(runner.started.is_set, timeout=30)
    archive = tmp_path / "archive"
    arch_stop = StopSignal()
    archiver = asyncio.create_task(
        run_archiver(
            ["kalshi", "kraken"], archive, env=bus_env, url=nats_url, stop=arch_stop, signals=False
        )
    )
    try:
        # several frames per batch: multi-line bus messages, "seq":[M,i] in the archive
        await publish(js, "kalshi", bus_env, kalshi_frames(600, T0, 1), conn="k-1", batch=4)
        await publish(js, "kraken", bus_env, kraken_frames(400, T0, 2), conn="r-1", batch=3)
        for stream, venue in (
            (f"{bus_env.upper()}_KALSHI", "kalshi"),
            (f"{bus_env.upper()}_KRAKEN", "kraken"),
        ):
            last = int((await js.stream_info(stream)).state.last_seq)
            await async_wait_until(
                lambda v=venue, n=last: runner.stats.last_seq.get(v) == n, timeout=60
            )
    finally:
        stop.set()
        await task
        arch_stop.set("done")
        await archiver
    live = await stored_fires(js, sid)
    assert len(live) > 20
    result = run_backtest(Backtest(src, {"threshold": THRESHOLD}, root=archive, chunk_lines=37))
    replay = [(f.msg_id, f.body()) for f in result.fires]
    assert {orjson.loads(b)["venue"] for _, b in live} == {"kalshi", "kraken"}
    assert any(isinstance(orjson.loads(b)["source_seq"], list) for _, b in live)
    # the same fires, byte for byte, with the same message ids (the order across venues
    # may differ: live, each venue stream is its own consumer)
    assert sorted(live, key=lambda f: fire_key(f[1])) == sorted(
        replay, key=lambda f: fire_key(f[1])
    )


def _start(folder: Path, sid: str, env: str, url: str, log: Path) -> subprocess.Popen[bytes]:
    args = ["signal", "run", sid, "--signals-dir", str(folder), "--nats", url, "--venue", "kalshi"]
    args += ["--param", f"threshold={THRESHOLD}", "--batch", "25"]
    with open(log, "ab") as err:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ssmd", *args],
            env={**os.environ, "SSMD_ENV": env},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


async def test_sigkill_and_restart_neither_refire_nor_miss(
    nats_url: str, bus_env: str, signal_dir: tuple[Path, str], js: Any, tmp_path: Path
) -> None:
    folder, sid = signal_dir
    stream = f"{bus_env.upper()}_KALSHI"
    consumer = f"signal-{sid}"
    log = tmp_path / "runner.log"
    rng = random.Random(5)

    async def consumer_floor() -> int:
        info = await js.consumer_info(stream, consumer)
        return int(info.ack_floor.stream_seq) if info.ack_floor else 0

    async def running(proc: subprocess.Popen[bytes]) -> None:
        async def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                await js.consumer_info(stream, consumer)
            except Exception:
                return False
            return "running on" in log.read_text()

        await async_wait_until(ready, timeout=60)

    # the stream exists before the first start, so that start reads from its end
    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import spec_for_venue, stream_specs

    await ensure_streams(js, [spec_for_venue("kalshi", stream_specs(bus_env))])
    proc = _start(folder, sid, bus_env, nats_url, log)
    await running(proc)
    p = None
    t = T0
    seq = 1
    try:
        # 1. an instrument goes high and stays quiet longer than the window; the runner is
        #    killed, and after the restart a trade keeps it high: that is no new fire
        #    (a runner that rebuilt its edges from the window alone would fire again)
        quiet = [(t, kalshi_trade("KX-QUIET", "0.5000", "8000.00", "yes", seq))]
        p = await publish(js, "kalshi", bus_env, quiet, conn="k-1")
        seq += 1
        await async_wait_until(lambda: stored_fires(js, sid), timeout=60)
        # 2. random trades, the runner killed at random moments in between
        for round_ in range(4):
            frames = kalshi_frames(150, t + S, 10 + round_, seq)
            seq += len(frames)
            t = frames[-1][0]
            sender = asyncio.create_task(
                publish(js, "kalshi", bus_env, frames, conn="k-1", batch=2, processor=p)
            )
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            await sender
            proc = _start(folder, sid, bus_env, nats_url, log)
            await running(proc)
        t += 40 * S  # four windows later
        again = [(t, kalshi_trade("KX-QUIET", "0.5000", "8000.00", "yes", seq))]
        await publish(js, "kalshi", bus_env, again, conn="k-1", processor=p)
        last = int((await js.stream_info(stream)).state.last_seq)
        await async_wait_until(lambda: _at(consumer_floor, last), timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    stored = await stored_fires(js, sid)
    # what one uninterrupted run over the whole stream fires
    msgs = await stream_lines(js, stream)
    data, _, _ = stamp_seq([s for s, _ in msgs], [d for _, d in msgs], "x", "y")
    sig = find_signal(sid, folder).make({"threshold": THRESHOLD})
    expected = [(f.msg_id, f.body()) for f in SignalRun(sig).process(data)]
    assert len(expected) > 10
    quiet_fires = [b for _, b in expected if b"KX-QUIET" in b]
    assert len(quiet_fires) == 1
    assert len({m for m, _ in stored}) == len(stored), "a fire stored twice"
    assert stored == expected, log.read_text()[-3000:]


async def _at(floor: Any, last: int) -> bool:
    return bool(await floor() >= last)


async def test_subscribe_prints_each_stored_fire_once(
    nats_url: str, signal_dir: tuple[Path, str], js: Any
) -> None:
    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import stream_specs

    await ensure_streams(js, [s for s in stream_specs() if s.name == "SIGNALS"])
    _, sid = signal_dir
    bodies = [
        orjson.dumps(
            {
                "signal": sid,
                "instrument": f"KX-{i}",
                "venue": "kalshi",
                "ts": None,
                "rx": T0 + i,
                "source_seq": [7, i],
                "payload": {"dollar_volume": 1e6 + i, "trades": i},
            }
        )
        for i in range(3)
    ]
    for i, b in enumerate([*bodies, bodies[1]]):  # the last: a runner's restart publishing again
        await js.publish(
            f"signals.{sid}.KX-{i % 3}",
            b,
            headers={"Nats-Msg-Id": f"{sid}:kalshi:c:{T0 + i % 3}.0"},
        )
    args = [
        sys.executable,
        "-m",
        "ssmd",
        "signal",
        "subscribe",
        sid,
        "--nats",
        nats_url,
        "--since",
        "5m",
    ]
    r = await asyncio.to_thread(
        subprocess.run,
        [*args, "--json", "--count", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert [line.encode() for line in r.stdout.splitlines()] == bodies
    r = await asyncio.to_thread(
        subprocess.run, [*args, "--duration", "2"], capture_output=True, text=True, timeout=60
    )
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout
    assert lines[0].endswith(f"  {sid}  kalshi  KX-0  dollar_volume=1e+06 trades=0")
