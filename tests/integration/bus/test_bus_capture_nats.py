"""Simulator -> connector -> JetStream -> archiver on real nats-servers.

Counted end to end: every message the simulator sent is in the archive
exactly once, also across a nats-server restart in the middle of the capture.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.archive import iter_lines
from ssmd.bus.archiver import VenueArchiver
from ssmd.bus.nats import JetStreamSource, connect, open_bus_sink
from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.registry import create
from ssmd.runtime.capture import Capture, run_capture
from ssmd.runtime.shutdown import StopSignal

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]


def _data(cap: Capture) -> int:
    return cap.totals().get("data", 0)


def _sent(sim: Any) -> int:
    return sum(sim.stats()["messages"].values())


async def _archive_all(url: str, env: str, root: Path, stream: str) -> VenueArchiver:
    nc = await connect(url)
    try:
        arch = VenueArchiver(
            JetStreamSource(nc, stream, "archiver"), root, "kraken", env=env, flush_interval=0.05
        )
        stop = asyncio.Event()
        task = asyncio.create_task(arch.run(stop))
        js = nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        await async_wait_until(
            lambda: (arch.stats.last_seq or 0) >= last or task.done(), timeout=30
        )
        stop.set()
        await task
        return arch
    finally:
        await nc.close()


def _kinds(root: Path) -> tuple[Counter[str], list[dict[str, Any]]]:
    lines = [orjson.loads(x) for x in iter_lines(root, "kraken")]
    kinds = Counter(
        x["subj"].split(".json.", 1)[1].split(".", 1)[0]
        for x in lines
        if not (isinstance(x["msg"], dict) and "ssmd" in x["msg"])
    )
    return kinds, lines


async def _capture(sim: Any, url: str, env: str, **bus: Any) -> tuple[Any, Any, Any, Any, Any]:
    connector = create("kraken", {"ws_url": sim.ws_url, "rest_url": sim.rest_url})
    sink, nc = await open_bus_sink("kraken", env=env, url=url, **bus)
    stop = StopSignal()
    got: list[Capture] = []
    task = asyncio.create_task(
        run_capture(
            connector,
            InstrumentQuery(symbols=tuple(SYMBOLS)),
            sink,
            stop=stop,
            started=got.append,
            writer="test",
            env=env,
        )
    )
    await async_wait_until(lambda: got or task.done(), timeout=20)
    if task.done():
        await task
    return got[0], sink, nc, stop, task


async def test_everything_sent_reaches_the_archive_once(
    nats_url: str, bus_env: str, tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken", rate=4000.0)
    cap, sink, nc, stop, task = await _capture(sim, nats_url, bus_env)
    await async_wait_until(lambda: _data(cap) >= 3000, timeout=20)
    await sim.set_rate(0)
    await async_wait_until(lambda: _data(cap) == _sent(sim), timeout=10)
    sent = Counter(sim.stats()["messages"])
    stop.set("test")
    await asyncio.wait_for(task, 20)
    await nc.close()
    assert sink.dropped_lines == 0 and sink.lines_acked > 0
    arch = await _archive_all(nats_url, bus_env, tmp_path, f"{bus_env.upper()}_KRAKEN")
    kinds, lines = _kinds(tmp_path)
    assert kinds == sent
    assert arch.stats.lines == len(lines) == sink.lines_acked
    seqs = [x["seq"] if isinstance(x["seq"], int) else x["seq"][0] for x in lines]
    assert sorted(set(seqs)) == list(range(1, arch.stats.messages + 1))


async def test_a_nats_restart_mid_capture_loses_nothing(
    private_nats: Any, tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken", rate=3000.0)
    cap, sink, nc, stop, task = await _capture(sim, private_nats.url, "prod", ack_timeout=1.0)
    await async_wait_until(lambda: sink.lines_acked >= 2000, timeout=20)
    private_nats.stop(kill=True)
    before = _data(cap)
    await async_wait_until(lambda: _data(cap) >= before + 1500, timeout=20)  # NATS is down
    assert sink.pending_bytes > 0
    private_nats.start()
    await async_wait_until(lambda: sink.inflight == 0 and sink.pending_bytes == 0, timeout=30)
    await sim.set_rate(0)
    await async_wait_until(lambda: _data(cap) == _sent(sim), timeout=10)
    sent = Counter(sim.stats()["messages"])
    stop.set("test")
    await asyncio.wait_for(task, 30)
    assert nc.stats["reconnects"] == 1
    await nc.close()
    assert sink.dropped_lines == 0
    await _archive_all(private_nats.url, "prod", tmp_path, "PROD_KRAKEN")
    kinds, _ = _kinds(tmp_path)
    assert kinds == sent  # nothing lost, nothing twice


async def test_a_restart_longer_than_the_buffer_pauses_the_venue_instead_of_dropping(
    private_nats: Any, tmp_path: Path, make_sim: MakeSim
) -> None:
    """NATS down for longer than the buffer's pause mark lasts: the venue waits, no drop.

    The bound (8 MiB, pausing at 2 MiB) leaves room for one socket read of
    what the kernel buffered during the pause.
    """
    sim = await make_sim("kraken", rate=6000.0)
    cap, sink, nc, stop, task = await _capture(
        sim, private_nats.url, "prod", ack_timeout=1.0, max_pending_bytes=8 << 20
    )
    await async_wait_until(lambda: sink.lines_acked >= 2000, timeout=20)
    private_nats.stop(kill=True)
    await async_wait_until(lambda: cap.flow.paused, timeout=10, message="reading paused")
    unread = _sent(sim) - _data(cap)
    await asyncio.sleep(2.0)  # the venue goes on sending into the socket
    assert cap.flow.paused and _sent(sim) - _data(cap) > unread + 3000
    private_nats.start()
    await async_wait_until(lambda: not cap.flow.paused, timeout=20, message="reading again")
    await sim.set_rate(0)
    await async_wait_until(lambda: _data(cap) == _sent(sim), timeout=20)
    await async_wait_until(lambda: sink.inflight == 0 and sink.pending_bytes == 0, timeout=30)
    sent = Counter(sim.stats()["messages"])
    stop.set("test")
    await asyncio.wait_for(task, 30)
    await nc.close()
    assert sink.dropped_lines == 0 and sink.gaps == 0
    await _archive_all(private_nats.url, "prod", tmp_path, "PROD_KRAKEN")
    kinds, lines = _kinds(tmp_path)
    assert kinds == sent
    # no stall and no reconnect of the venue connection was recorded for the pause
    events = [x["msg"]["ssmd"] for x in lines if isinstance(x["msg"], dict) and "ssmd" in x["msg"]]
    assert "stall" not in events and "reconnect" not in events


async def test_a_second_signal_while_the_bus_is_down_says_what_it_drops(
    private_nats: Any, tmp_path: Path, make_sim: MakeSim
) -> None:
    """SIGTERM waits for the bus to confirm; a second SIGTERM stops hard and says what is lost."""
    import os
    import signal
    import sys

    sim = await make_sim("kraken", rate=2000.0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ssmd",
        "connect",
        "kraken",
        "--symbols",
        ",".join(SYMBOLS),
        "--ws-url",
        sim.ws_url,
        "--rest-url",
        sim.rest_url,
        "--nats",
        private_nats.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": ""},
    )
    assert proc.stderr is not None
    seen: list[str] = []

    async def wait_log(needle: str, timeout: float) -> None:
        async def grow() -> bool:
            assert proc.stderr is not None
            line = await asyncio.wait_for(proc.stderr.readline(), timeout)
            seen.append(line.decode())
            return needle in seen[-1]

        await async_wait_until(grow, timeout=timeout, message=needle)

    await wait_log("publishing to stream", 30)
    await async_wait_until(lambda: _sent(sim) > 2000, timeout=20)
    private_nats.stop(kill=True)  # the bus is gone: nothing more is confirmed
    sent = _sent(sim)
    await async_wait_until(lambda: _sent(sim) > sent + 1000, timeout=20)  # unconfirmed data
    proc.send_signal(signal.SIGTERM)
    await wait_log("stopping", 10)
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    text = "".join(seen) + err.decode()
    assert proc.returncode == -signal.SIGTERM, text
    line = next((x for x in text.splitlines() if "second SIGTERM" in x), text[-2000:])
    assert "stopping hard" in line and "not confirmed by the bus are dropped" in line, line
    dropped = int(line.split("stopping hard; ")[1].split(" line")[0].replace(",", ""))
    assert dropped > 0
