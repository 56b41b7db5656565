"""Simulator send rate: one connection, unthrottled, counted by a client that only counts.

The simulator runs in its own process (``ssmd sim <venue> --rate max``), so
it has a core to itself on a 2-core machine; the client (picows, this
process) subscribes to the whole default universe (Kalshi: ``ticker`` and
``trade`` on every market plus ``orderbook_delta`` on 100; Kraken: ``book``,
``ticker`` with the ``bbo`` trigger and ``trade``; Kraken Futures: all three
feeds; Polymarket: 200 tokens with custom features) and counts frames. A
timed run receives 300,000 frames per venue; under ``--benchmark-disable``
(the smoke run) 3,000.

``extra_info``: ``frames_per_s`` and ``mb_per_s`` of the received stream.

Timed run: ``python -m pytest benches/python/bench_sim.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson
import pytest
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from ssmd.sim import SimServer, venue_class
from ssmd.types import Venue

TIMED_FRAMES = 300_000
SMOKE_FRAMES = 3_000


class _Counter(WSListener):
    def __init__(self) -> None:
        super().__init__()
        self.frames = 0
        self.bytes = 0
        self.target = 0
        self.done: asyncio.Future[float] | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.frames += 1
            self.bytes += frame.payload_size
            if self.frames == self.target and self.done is not None and not self.done.done():
                self.done.set_result(time.perf_counter())


def _subscriptions(venue: str, ids: list[str]) -> list[Any]:
    if venue == "kraken":
        return [
            {"method": "subscribe", "params": {"channel": "book", "symbol": ids}},
            {
                "method": "subscribe",
                "params": {"channel": "ticker", "symbol": ids, "event_trigger": "bbo"},
            },
            {"method": "subscribe", "params": {"channel": "trade", "symbol": ids}},
        ]
    if venue == "kraken-futures":
        return [
            {"event": "subscribe", "feed": f, "product_ids": ids}
            for f in ("ticker", "trade", "book")
        ]
    if venue == "polymarket":
        return [{"assets_ids": ids[:500], "type": "market", "custom_feature_enabled": True}]
    return [
        {"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker", "trade"]}},
        {
            "id": 2,
            "cmd": "subscribe",
            "params": {"channels": ["orderbook_delta"], "market_tickers": ids[:100]},
        },
    ]


async def _instrument_ids(venue: str) -> list[str]:
    """The default universe (the same seed builds the same one as the CLI's)."""
    return SimServer(venue_class(venue), rate=0.0).venue.instrument_ids()


async def _measure(venue: str, frames: int) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssmd", "sim", venue, "--rate", "max", "--stats-every", "0",
        *(["--accept-unsigned"] if venue == "kalshi" else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()[-1]
        ids = await _instrument_ids(venue)
        transport, client = await ws_connect(
            _Counter, url, max_frame_size=64 << 20, extra_headers={"KALSHI-ACCESS-KEY": "bench"}
        )
        assert isinstance(client, _Counter)
        loop = asyncio.get_running_loop()
        client.done = loop.create_future()
        for sub in _subscriptions(venue, ids):
            transport.send(WSMsgType.TEXT, orjson.dumps(sub))
        warm = min(frames // 10, 20_000)
        client.target = warm
        t0 = await asyncio.wait_for(client.done, 60)
        f0, b0 = client.frames, client.bytes
        client.done = loop.create_future()
        client.target = warm + frames
        t1 = await asyncio.wait_for(client.done, 120)
        transport.disconnect()
        secs = t1 - t0
        return {
            "frames_per_s": (client.frames - f0) / secs,
            "mb_per_s": (client.bytes - b0) / secs / 1e6,
        }
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize("venue", [v.value for v in Venue])
def test_sim_send_rate(benchmark: Any, venue: str) -> None:
    frames = SMOKE_FRAMES if benchmark.disabled else TIMED_FRAMES
    result: dict[str, float] = {}

    def run() -> None:
        result.update(asyncio.run(_measure(venue, frames)))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 1) for k, v in result.items()})
    benchmark.extra_info["frames"] = frames
    assert result["frames_per_s"] > 0
