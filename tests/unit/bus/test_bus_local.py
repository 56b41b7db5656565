"""Connector -> in-process bus -> archiver in one process (``--nats memory://``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from capture_helpers import archive, capturing, data_count, kinds, sim_messages
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.archive.verify import verify_archive
from ssmd.bus.local import LocalPipeline, is_memory_url

SYMBOLS = ["BTC/USD", "ETH/USD"]


async def test_everything_the_venue_sent_is_archived_with_a_stream_sequence(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    assert is_memory_url("memory://") and not is_memory_url("nats://x")
    sim = await make_sim("kraken", rate=3000.0)
    pipe = LocalPipeline("kraken", tmp_path, env="prod", writer="t", flush_interval=0.05)
    await pipe.start()
    async with capturing(sim, "kraken", SYMBOLS, tmp_path, sink=pipe) as cap:
        await async_wait_until(lambda: data_count(cap) >= 1500, timeout=20)
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=10)
        expected = Counter(sim.stats()["messages"])
    lines = archive(tmp_path, "kraken")
    assert kinds(lines) == expected
    assert all("seq" in x for x in lines)
    assert pipe.archiver.stats.lines == len(lines) == pipe.sink.lines_in
    result = verify_archive(tmp_path, "kraken")
    assert result.ok, result.as_dict()


async def test_a_stuck_archiver_pauses_the_venue_and_nothing_ages_out(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    """The in-process archiver stops for a while: reading pauses, no stream gap, all archived."""
    sim = await make_sim("kraken", rate=3000.0)
    pipe = LocalPipeline(
        "kraken", tmp_path, env="prod", writer="t", flush_interval=0.05, high_water=128 << 10
    )
    gate = asyncio.Event()
    gate.set()
    fetch = pipe.source.fetch

    async def gated_fetch(max_msgs: int, timeout: float) -> list[tuple[int, bytes]]:
        await gate.wait()
        return await fetch(max_msgs, timeout)

    pipe.source.fetch = gated_fetch  # type: ignore[method-assign]
    await pipe.start()
    async with capturing(sim, "kraken", SYMBOLS, tmp_path, sink=pipe) as cap:
        await async_wait_until(lambda: data_count(cap) >= 500, timeout=20)
        gate.clear()  # the archiver is stuck (a slow disk)
        await async_wait_until(lambda: cap.flow.paused, timeout=10, message="reading paused")
        unread = sim_messages(sim) - data_count(cap)
        # the pause holds while the venue sends 2000 more (the kernel keeps them)
        await async_wait_until(lambda: sim_messages(sim) - data_count(cap) > unread + 2000)
        assert cap.flow.paused and cap.flow.overflows == 0
        gate.set()
        await async_wait_until(lambda: not cap.flow.paused, timeout=10, message="reading again")
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=20)
        expected = Counter(sim.stats()["messages"])
    assert pipe.archiver.stats.gaps == 0 and pipe.sink.dropped_lines == 0
    assert kinds(archive(tmp_path, "kraken")) == expected
