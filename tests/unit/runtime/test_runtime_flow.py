"""Flow control: reading pauses while the sink is behind, nothing is lost, and
the pause is neither a stall nor a dead connection."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from capture_helpers import capturing
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.bus.memory import MemoryBus, MemoryTransport
from ssmd.bus.sink import BusSink
from ssmd.bus.streams import stream_specs
from ssmd.errors import SinkError
from ssmd.runtime.sink import MemorySink
from ssmd.runtime.watchdog import ActivityTracker

PRODUCTS = ["PF_XBTUSD", "PF_ETHUSD", "PI_XBTUSD"]


class GatedSink(MemorySink):
    """Keeps what it is given as 'not yet durable' while ``hold`` is set."""

    def __init__(self, high_water: int) -> None:
        super().__init__()
        self.high_water = high_water
        self.hold = False
        self._held: list[bytes] = []
        self._held_bytes = 0
        self.max_queued = 0

    @property
    def queued_bytes(self) -> int:
        return self._held_bytes

    def write(self, lines: bytes) -> None:
        if not self.hold:
            self.release()
            super().write(lines)
            return
        self._held.append(lines)
        self._held_bytes += len(lines)
        self.max_queued = max(self.max_queued, self._held_bytes)

    def release(self) -> None:
        held, self._held, self._held_bytes = self._held, [], 0
        for b in held:
            super().write(b)

    def data_lines(self) -> int:
        return sum(1 for x in self.lines() if b'"ssmd":' not in x)


def _sent(sim: Any) -> int:
    return sum(sim.stats()["messages"].values())


async def test_pause_holds_the_venue_and_loses_nothing(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken-futures", rate=3000.0)
    sink = GatedSink(high_water=32 << 10)
    async with capturing(
        sim, "kraken-futures", PRODUCTS, tmp_path, stall_timeout=1.0, sink=sink
    ) as cap:
        await async_wait_until(lambda: cap.totals().get("data", 0) >= 500, timeout=20)
        # the receive buffer is fixed (not autotuned): one read after a pause is bounded
        # (256 KiB by default, which Linux doubles)
        t = cap.connections[0].transport
        assert t is not None
        sock = t.underlying_transport.get_extra_info("socket")
        assert 0 < sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 2 * (256 << 10)
        sink.hold = True
        await async_wait_until(lambda: cap.flow.paused, timeout=10, message="paused")
        # not reading: what the venue sends waits in socket buffers, not here
        before = cap.totals()["data"]
        await asyncio.sleep(2.5)  # over twice the stall bound and the keep-alive check
        assert cap.flow.paused
        assert cap.totals()["data"] - before < 2000  # only what was already read
        assert _sent(sim) - cap.totals()["data"] > 1500  # the venue went on sending
        sink.hold = False
        sink.release()
        await async_wait_until(lambda: not cap.flow.paused, timeout=5, message="resumed")
        await sim.set_rate(0)
        await async_wait_until(lambda: cap.totals()["data"] == _sent(sim), timeout=20)
        t = cap.totals()
        # the pause was not silence: no stall, no reconnect, no gap
        assert t["stalls"] == 0 and t["reconnects"] == 0 and t["gaps"] == 0
        assert t["read_pauses"] >= 1 and t["read_paused_ms"] >= 2000
    assert sink.data_lines() == _sent(sim)
    # memory stayed near the mark: one socket read past it at most
    assert sink.max_queued < (32 << 10) + (2 << 20)


class _DeadTransport:
    """A bus that is up but never acknowledges."""

    connected = True

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, subject: str, data: bytes, msg_id: str, token: int) -> None:
        self.sent += 1

    async def flush(self) -> None:
        return None


async def test_bus_pause_ends_after_max_pause_then_drops_are_recorded(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken-futures", rate=3000.0)
    sink = BusSink(
        _DeadTransport(),
        env="prod",
        venue="kraken-futures",
        max_pending_bytes=64 << 10,
        close_timeout=0.5,
    )
    sink.max_pause = 0.5
    sink.ack_timeout = 3600.0
    await sink.start()
    # leaving the block closes the sink, which says what was never confirmed
    with pytest.raises(SinkError, match="not confirmed") as closed:
        async with capturing(sim, "kraken-futures", PRODUCTS, tmp_path, sink=sink) as cap:
            await async_wait_until(lambda: cap.flow.pauses >= 1, timeout=20, message="paused")
            await async_wait_until(lambda: cap.flow.overflows >= 1, timeout=5, message="overflow")
            # reading again: the venue is drained, the sink's policy drops and counts
            await async_wait_until(lambda: sink.dropped_lines > 100, timeout=10)
            assert not cap.flow.paused
            # data stays within the bound; status lines (the gap records being written now)
            # are never dropped and may pass it by their own size
            assert sink.pending_bytes <= sink.max_pending_bytes + 4096
    # raised by the close alone, not while a failure of the block was on its way out
    assert closed.value.__context__ is None


async def test_memory_bus_sink_pauses_instead_of_dropping(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    """A bus that is only slow: pauses absorb it, nothing is dropped."""
    bus = MemoryBus(stream_specs("prod"))

    class Slow(MemoryTransport):
        gate = asyncio.Event()

        async def send(self, subject: str, data: bytes, msg_id: str, token: int) -> None:
            await self.gate.wait()
            await super().send(subject, data, msg_id, token)

    transport = Slow(bus)
    sim = await make_sim("kraken-futures", rate=3000.0)
    sink = BusSink(
        transport,
        env="prod",
        venue="kraken-futures",
        max_pending_bytes=8 << 20,
        high_water=64 << 10,
    )
    await transport.start(sink)
    await sink.start()
    async with capturing(sim, "kraken-futures", PRODUCTS, tmp_path, sink=sink) as cap:
        await async_wait_until(lambda: cap.flow.paused, timeout=20, message="paused")
        unread = _sent(sim) - cap.totals()["data"]
        # the pause holds while the venue sends 2000 more (the kernel keeps them)
        await async_wait_until(lambda: _sent(sim) - cap.totals()["data"] > unread + 2000)
        assert cap.flow.paused
        Slow.gate.set()
        await async_wait_until(lambda: not cap.flow.paused, timeout=5)
        await sim.set_rate(0)
        await async_wait_until(lambda: cap.totals()["data"] == _sent(sim), timeout=20)
        await async_wait_until(lambda: sink.lines_acked >= _sent(sim), timeout=20)
    assert sink.dropped_lines == 0 and sink.gaps == 0
    assert cap.flow.overflows == 0


def test_tracker_shift_moves_silence_by_the_pause() -> None:
    t = ActivityTracker(bound=1.0)
    for i in range(20):
        t.seen("k", 10, i * 0.1)
    assert [s.key for s in t.check(1.9 + 1.5)] == ["k"]
    t2 = ActivityTracker(bound=1.0)
    for i in range(20):
        t2.seen("k", 10, i * 0.1)
    t2.shift(1.5)  # 1.5 s were not listened to
    assert t2.check(1.9 + 1.5) == []
    assert [s.key for s in t2.check(1.9 + 1.5 + 1.2)] == ["k"]
