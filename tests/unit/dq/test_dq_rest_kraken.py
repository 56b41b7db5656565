"""``ssmd dq trades --rest-url`` on Kraken spot and Kraken Futures: a capture from the
simulator compared with the trade history the simulator serves (``/0/public/Trades``,
``/derivatives/api/v3/history``), whole and with trade lines cut out of the archive."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

import ssmd
import ssmd.dq.rest as dq_rest
from capture_helpers import capturing, clear_of_midnight, data_count, sim_messages
from dq_helpers import cut_lines, rest_match_json
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.dq import check_trades
from ssmd.dq.rest import rest_trades

#: venue, the marker of a line holding trade updates (snapshots left whole), trades per id
CASES = {
    "kraken": ('"channel":"trade","type":"update"', "trade_id"),
    "kraken-futures": ('"feed":"trade","product_id"', "uid"),
}


def _cut(root: Path, inst: str, marker: str, key: str, every: int) -> int:
    """Drop every ``every``-th line of ``inst``'s trade updates from the archive; the
    trades those lines held."""
    chosen = (marker.encode(), f'"{inst}"'.encode())
    lines = cut_lines(root, lambda line: all(m in line for m in chosen), every)
    return sum(line.count(f'"{key}"'.encode()) for line in lines)


def test_clear_of_midnight() -> None:
    day = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    assert clear_of_midnight(day.replace(hour=12)) == 0.0
    assert clear_of_midnight(day.replace(hour=23, minute=59, second=30)) == 90.0
    assert clear_of_midnight(day.replace(second=20)) == 40.0


@pytest.mark.parametrize("venue", sorted(CASES))
async def test_kraken_venues_compared_with_the_simulator_s_history(
    tmp_path: Path, make_sim: MakeSim, venue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.sleep(clear_of_midnight(dt.datetime.now(dt.timezone.utc)))
    sim = await make_sim(venue, rate=3000)
    symbols = sim.venue.instrument_ids()[:2]
    root = tmp_path / "a"
    async with capturing(sim, venue, symbols, root) as cap:
        await async_wait_until(lambda: data_count(cap) >= 1500, timeout=30)
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=10)
    trades = ssmd.read("trade", venue, dir=root)
    inst = symbols[0]
    mine = trades.filter(trades["instrument"] == inst)
    day = mine["rx"][0].date()
    archived = set(mine["trade_id"].to_list())
    assert len(archived) > 100

    # the whole history, in small pages (spot) or the venue's 100 (futures)
    monkeypatch.setattr(dq_rest, "KRAKEN_COUNT", 37)
    rest = await asyncio.to_thread(rest_trades, venue, sim.rest_url, inst, day, rate=0)
    assert sorted(t["trade_id"] for t in rest) == sorted(archived)
    report = await asyncio.to_thread(check_trades, root, venue, inst, day, rest_trades=rest)
    match = next(c for c in report.checks if c.name == "rest_match")
    assert (match.value, match.score) == (len(archived), 1.0)

    # through the CLI, at the venue's own rate
    match_doc = await asyncio.to_thread(rest_match_json, root, venue, inst, day, sim.rest_url)
    assert (match_doc["value"], match_doc["score"]) == (len(archived), 1.0)

    # trades the archive lost: counted, exactly
    cut = await asyncio.to_thread(_cut, root, inst, *CASES[venue], 5)
    assert cut > 0
    match_doc = await asyncio.to_thread(rest_match_json, root, venue, inst, day, sim.rest_url)
    assert match_doc["value"] == len(archived) - cut
    assert match_doc["score"] == pytest.approx((len(archived) - cut) / len(archived))
    assert match_doc["score"] < 1.0
    assert match_doc["detail"].endswith("0 archived trades it does not list")


def test_futures_history_is_seven_days() -> None:
    with pytest.raises(ssmd.errors.ConfigError, match="last 7 days only"):
        rest_trades("kraken-futures", "http://127.0.0.1:1", "PF_XBTUSD", dt.date(2024, 3, 1))


async def test_futures_history_with_a_page_at_one_millisecond(
    make_sim: MakeSim, caplog: pytest.LogCaptureFixture
) -> None:
    """The history pages by time only: past a whole page of trades at one millisecond
    the rest of them cannot be listed; the client says so and goes on to older ones."""
    await asyncio.sleep(clear_of_midnight(dt.datetime.now(dt.timezone.utc)))
    sim = await make_sim("kraken-futures", rate=0)
    inst = sim.venue.instrument_ids()[0]
    now = dt.datetime.now(dt.timezone.utc)
    ms = int(now.timestamp() * 1000)
    log = sim.venue.trade_log
    for i in range(5):
        log.add(inst, ms - 10 + i, i, f"old-{i}", "buy", "fill", "1", "100")
    for i in range(250):
        log.add(inst, ms, 10 + i, f"same-{i:03d}", "sell", "fill", "1", "100")
    with caplog.at_level("WARNING", logger="ssmd.dq"):
        rest = await asyncio.to_thread(
            rest_trades, "kraken-futures", sim.rest_url, inst, now.date(), rate=0
        )
    ids = sorted(t["trade_id"] for t in rest)
    assert ids[:5] == [f"old-{i}" for i in range(5)]
    # newest first among equal times: the last 100 sent at that millisecond
    assert ids[5:] == [f"same-{i:03d}" for i in range(150, 250)]
    assert "101 or more trades at" in caplog.text
    assert "lists the first 100 only" in caplog.text


async def test_spot_history_with_a_page_at_one_time(
    make_sim: MakeSim, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``since`` is a time: a whole page at one time hides the rest of its trades; the
    client says so and goes on past that time."""
    await asyncio.sleep(clear_of_midnight(dt.datetime.now(dt.timezone.utc)))
    sim = await make_sim("kraken", rate=0)
    inst = sim.venue.instrument_ids()[0]
    now = dt.datetime.now(dt.timezone.utc)
    ns = int(now.timestamp()) * 1_000_000_000
    log = sim.venue.trade_log
    for i in range(5):
        log.add(inst, ns - 10_000 + i, "100", "1", "buy", "limit", i)
    for i in range(60):
        log.add(inst, ns, "100", "1", "sell", "market", 100 + i)
    for i in range(3):
        log.add(inst, ns + 5_000 + i, "100", "1", "buy", "limit", 200 + i)
    monkeypatch.setattr(dq_rest, "KRAKEN_COUNT", 37)
    with caplog.at_level("WARNING", logger="ssmd.dq"):
        rest = await asyncio.to_thread(
            rest_trades, "kraken", sim.rest_url, inst, now.date(), rate=0
        )
    ids = sorted(int(t["trade_id"]) for t in rest)
    assert ids == [*range(5), *range(100, 137), *range(200, 203)]
    assert "38 or more trades at one time" in caplog.text
