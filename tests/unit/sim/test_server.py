"""Simulator machinery shared by the venues: ports, pacing, timed faults, stats, bad input."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from helpers import async_wait_until
from sim_client import connect, http_get
from ssmd.errors import ConfigError
from ssmd.sim import FaultPlan, SimOptions, start_sim
from ssmd.sim.faults import FaultState


async def test_rest_on_a_second_port(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=0.0, rest_port=0)
    assert sim.rest_port != sim.port and f":{sim.rest_port}/" in sim.rest_url
    status, _, body = await http_get(f"{sim.rest_url}/instruments")
    assert status == 200 and body["result"] == "success"
    same_port = sim.rest_url.replace(str(sim.rest_port), str(sim.port))
    assert (await http_get(f"{same_port}/instruments"))[0] == 200  # still on the WS port too


async def test_rate_is_shared_by_connections(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=2000.0)
    a, b = await connect(sim.ws_url), await connect(sim.ws_url)
    a.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})
    b.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD"]})  # fmt: skip
    await async_wait_until(lambda: len(a.frames) > 30 and len(b.frames) > 30)
    ca, cb = sorted(sim.connections(), key=lambda c: c.ordinal)
    pa, pb, paced = ca.pumped, cb.pumped, sim.paced_seconds
    # a second of the simulator's pacing, however long the loaded machine takes for it
    await async_wait_until(lambda: sim.paced_seconds >= paced + 1.0)
    da, db, secs = ca.pumped - pa, cb.pumped - pb, sim.paced_seconds - paced
    # `rate` messages per paced second in all, but for the credit not yet spent
    assert abs((da + db) - 2000 * secs) <= 2, (da, db, secs)
    # shared in proportion to what each subscribed: 1 product against 3
    assert abs(db - 3 * da) <= 4, (da, db)


async def test_set_rate_zero_stops_data(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=3000.0)
    c = await connect(sim.ws_url)
    c.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})
    await async_wait_until(lambda: len(c.frames) > 100)
    await sim.set_rate(0.0)
    sent, rounds = sim.data_frames_sent, sim.pump_rounds
    await async_wait_until(lambda: sim.pump_rounds >= rounds + 20)  # the pump went on
    assert sim.data_frames_sent == sent  # and sent nothing
    await async_wait_until(lambda: len(c.frames) == sim.connections()[0].frames_out)
    mark = len(c.frames)
    await sim.set_rate(float("inf"))
    await async_wait_until(lambda: len(c.frames) > mark + 5000)
    with pytest.raises(ConfigError):
        await sim.set_rate(-1.0)


async def test_planned_stall_and_timed_disconnect(make_sim: Any) -> None:
    sim = await make_sim(
        "kraken-futures",
        rate=2000.0,
        faults=FaultPlan(stall_after=0.3, stall_for=0.5, disconnect_every=1.5),
    )
    c = await connect(sim.ws_url)
    c.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})
    arrivals: list[float] = []
    seen = 0
    while not c.disconnected.is_set():
        await asyncio.sleep(0.02)
        if len(c.frames) > seen:
            seen = len(c.frames)
            arrivals.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) >= 0.4  # the stall
    faults = sim.stats()["faults"]
    assert faults["stall"] >= 1 and faults["disconnect"] == 1


async def test_unknown_fault_and_bad_arguments(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=0.0)
    with pytest.raises(ConfigError, match="unknown fault"):
        sim.inject("meteor")
    with pytest.raises(ConfigError, match="takes no"):
        sim.inject("disconnect", seconds=3)
    with pytest.raises(ConfigError, match="unknown venue"):
        await start_sim("binance")
    with pytest.raises(ConfigError):
        FaultPlan(drop=0.7, duplicate=0.7)
    with pytest.raises(ConfigError):
        SimOptions(tick=0)


async def test_unknown_path_and_non_upgrade(make_sim: Any) -> None:
    sim = await make_sim("kalshi", rate=0.0)
    status, _, body = await http_get(f"http://127.0.0.1:{sim.port}/nothing")
    assert status == 404 and body["error"]["code"] == "not_found"
    # the WebSocket path without an upgrade is a REST request like any other
    status, _, _ = await http_get(f"http://127.0.0.1:{sim.port}/trade-api/ws/v2")
    assert status == 404


def test_fault_dice_are_reproducible() -> None:
    from collections import Counter

    plan = FaultPlan(drop=0.1, duplicate=0.1, reorder=0.1, malformed=0.1)
    msgs = [f'{{"n":{i}}}'.encode() for i in range(500)]
    runs = [FaultState.create(plan, 7, 1, Counter()).apply(msgs) for _ in range(2)]
    assert runs[0] == runs[1]
    other = FaultState.create(plan, 8, 1, Counter()).apply(msgs)
    assert other != runs[0]
