"""The signal runner on the in-process bus: captures publish to one MemoryBus
(LocalPipeline, as ``ssmd demo`` wires them), the runner's fires land on its SIGNALS
stream, equal to a backtest of what the archiver wrote, and a runner started again
on the same bus neither fires twice nor misses a fire."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from signal_helpers import T0, kalshi_frames, kraken_frames
from ssmd.bus.local import LocalPipeline
from ssmd.bus.memory import MemoryBus
from ssmd.bus.streams import stream_specs
from ssmd.core import Processor
from ssmd.errors import ConfigError
from ssmd.signals import find_signal
from ssmd.signals.backtest import Backtest, run_backtest
from ssmd.signals.inprocess import InProcessSignals, read_fires

THRESHOLD = "8000"
VENUES = ["kalshi", "kraken"]


def signals_bus() -> MemoryBus:
    return MemoryBus([s for s in stream_specs("prod", environ={}) if s.name == "SIGNALS"])


def capture(pipe: LocalPipeline, p: Processor, frames: list[tuple[int, bytes]], batch: int) -> None:
    """Frames through the core into the pipeline, as a connector writes them (several
    frames per batch: multi-line bus messages)."""
    for i in range(0, len(frames), batch):
        part = frames[i : i + batch]
        b = p.process([f for _, f in part], [rx for rx, _ in part])
        pipe.write_batch(b, b.groups())


def the_signal() -> object:
    return find_signal("volume-1m-1min").make({"threshold": THRESHOLD})


def key(body: bytes) -> tuple[int, str]:
    d = orjson.loads(body)
    return d["rx"], d["instrument"]


async def test_fires_on_the_in_process_bus_equal_a_backtest(tmp_path: Path) -> None:
    bus = signals_bus()
    archive = tmp_path / "archive"
    pipes = {
        v: LocalPipeline(v, archive, env="prod", writer="test", bus=bus, fsync=False)
        for v in VENUES
    }
    signals = InProcessSignals(bus, [the_signal()], VENUES, batch=50)  # type: ignore[list-item]
    for pipe in pipes.values():
        await pipe.start()
    await signals.start()
    for v, pipe in pipes.items():
        for src in signals.sources(v):
            pipe.hold_for(src)
    kalshi, kraken = Processor("kalshi", "k-1", "prod"), Processor("kraken", "r-1", "prod")
    capture(pipes["kalshi"], kalshi, kalshi_frames(600, T0, 1), 4)
    capture(pipes["kraken"], kraken, kraken_frames(400, T0, 2), 3)
    for pipe in pipes.values():
        await pipe.aclose()
    (stats,) = await signals.finish()
    live = await read_fires(bus)
    assert len(live) > 20 and stats.fires == len(live)
    assert {f.venue for f in live} == {"kalshi", "kraken"}
    assert any(isinstance(f.source_seq, tuple) for f in live)  # "seq":[M,i] lines
    assert stats.edges_written > 0 and len(bus.kv("ssmd_signals")) > 0
    result = run_backtest(
        Backtest(find_signal("volume-1m-1min"), {"threshold": THRESHOLD}, root=archive)
    )
    # the same fires, byte for byte, with the same message ids (the order across venues
    # may differ: each venue stream is its own consumer)
    assert sorted((f.body() for f in live), key=key) == sorted(
        (f.body() for f in result.fires), key=key
    )
    assert set(bus.stream("SIGNALS").ids) == {f.msg_id for f in result.fires}
    # a subscriber reads each fire once
    assert await read_fires(bus) == []


async def test_a_runner_started_again_on_the_bus_neither_refires_nor_misses(
    tmp_path: Path,
) -> None:
    bus = signals_bus()
    archive = tmp_path / "archive"
    pipe = LocalPipeline("kalshi", archive, env="prod", writer="test", bus=bus, fsync=False)
    await pipe.start()
    p = Processor("kalshi", "k-1", "prod")
    frames = kalshi_frames(900, T0, 5)
    fired = 0
    for part in range(3):
        signals = InProcessSignals(bus, [the_signal()], ["kalshi"], batch=20)  # type: ignore[list-item]
        await signals.start()
        capture(pipe, p, frames[part * 300 : (part + 1) * 300], 2)
        while not await signals.runners[0].caught_up():
            await asyncio.sleep(0.01)
        (stats,) = await signals.finish()
        fired += stats.fires
        if part:
            # windows rebuilt from the stream, edges from the bus's bucket
            assert stats.warm_messages > 0 and stats.edges_restored >= 0
    await pipe.aclose()
    live = await read_fires(bus)
    result = run_backtest(
        Backtest(find_signal("volume-1m-1min"), {"threshold": THRESHOLD}, root=archive)
    )
    assert len(result.fires) > 20
    bodies = sorted((f.body() for f in live), key=key)
    assert fired == len(bodies)  # nothing published twice
    assert bodies == sorted((f.body() for f in result.fires), key=key)  # nothing missed


async def test_a_bus_without_signals_stream_is_a_config_error() -> None:
    bus = MemoryBus([s for s in stream_specs("prod", environ={}) if s.name == "PROD_KRAKEN"])
    signals = InProcessSignals(bus, [the_signal()], ["kraken"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="no SIGNALS stream"):
        await signals.start()
