"""Kraken Futures end to end against the simulator: counts, trade seq gap
recorded, reconnect with exactly the desired set, book resync."""

from __future__ import annotations

from pathlib import Path

from capture_helpers import archive, capturing, data_count, kinds, sim_messages, ssmd_events
from helpers import async_wait_until
from sim_client import MakeSim

PRODUCTS = ["PF_XBTUSD", "PF_ETHUSD", "PI_XBTUSD"]


async def test_counts_match_what_the_sim_sent(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken-futures", rate=2000.0)
    async with capturing(
        sim, "kraken-futures", PRODUCTS, tmp_path, channels=("ticker", "trade", "book")
    ) as cap:
        await async_wait_until(lambda: data_count(cap) >= 1000, timeout=20)
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=10)
        sent = {k: n for k, n in sim.stats()["messages"].items() if n}
        assert sum(sim.stats()["subscriptions"].values()) == len(PRODUCTS) * 3
        assert cap.totals()["gaps"] == 0
    assert dict(kinds(archive(tmp_path, "kraken-futures"))) == sent


async def test_gap_and_reconnect(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken-futures", rate=2000.0)
    async with capturing(sim, "kraken-futures", PRODUCTS, tmp_path) as cap:
        await async_wait_until(lambda: data_count(cap) >= 300, timeout=20)
        sim.inject("drop", count=3)
        await async_wait_until(lambda: cap.totals()["gaps"] >= 1, timeout=10)
        before = sum(sim.stats()["subscriptions"].values())
        sim.inject("disconnect", abrupt=True)
        await async_wait_until(lambda: cap.totals()["reconnects"] == 1, timeout=10)
        await async_wait_until(
            lambda: sum(sim.stats()["subscriptions"].values()) == before, timeout=10
        )
        assert before == len(PRODUCTS) * 2 and cap.totals()["venue_errors"] == 0
    events = ssmd_events(archive(tmp_path, "kraken-futures"))
    assert "gap" in events
    i = events.index("disconnect")
    assert events[i : i + 2] == ["disconnect", "reconnect"]


async def test_book_gap_resubscribes_that_book(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken-futures", rate=2000.0)
    async with capturing(sim, "kraken-futures", PRODUCTS, tmp_path, channels=("book",)) as cap:
        await async_wait_until(lambda: data_count(cap) >= 300, timeout=20)
        sim.inject("drop", count=1)
        await async_wait_until(lambda: cap.totals()["resyncs"] >= 1, timeout=10)
        conn = cap.connections[0]
        await async_wait_until(lambda: conn.stats.resync_requests >= 1, timeout=5)
        await async_wait_until(
            lambda: sim.stats()["controls"].get("unsubscribed", 0) >= 1, timeout=5
        )
        await async_wait_until(
            lambda: sum(sim.stats()["subscriptions"].values()) == len(PRODUCTS), timeout=5
        )
        assert cap.totals()["venue_errors"] == 0
    assert "resync" in ssmd_events(archive(tmp_path, "kraken-futures"))
