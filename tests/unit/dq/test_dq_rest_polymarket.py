"""``ssmd dq trades --rest-url`` on Polymarket: a capture from the simulator compared with
the Data API trade history it serves (``/data/trades``), whole and with trade lines cut
out of the archive; the match by transaction hash or by (second, price, size, side); the
Data API's offset limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

import ssmd
import ssmd.dq.rest as dq_rest
from capture_helpers import capturing, clear_of_midnight, data_count, sim_messages
from dq_helpers import cut_lines, rest_match_json
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.dq import check_trades
from ssmd.dq.rest import polymarket_condition, rest_trades
from ssmd.dq.trades import match_count
from ssmd.errors import ConfigError

K1 = (1_700_000_000, "0.48", "30", "buy")
K2 = (1_700_000_001, "0.5", "12.5", "sell")


def test_match_by_hash_where_both_have_one() -> None:
    # the same hash on both sides matches, whatever the keys say
    assert match_count([("0xa", K1)], [("0xa", K2)]) == 1
    # two different hashes never match, even with equal keys
    assert match_count([("0xa", K1)], [("0xb", K1)]) == 0
    # a hash twice on each side is two matches; three against one is one
    assert match_count([("0xa", K1), ("0xa", K1)], [("0xa", K1), ("0xa", K1)]) == 2
    assert match_count([("0xa", K1)] * 3, [("0xa", K1)]) == 1


def test_match_by_key_where_a_side_has_no_hash() -> None:
    # an archived trade without its hash matches a listed one by key
    assert match_count([(None, K1)], [("0xa", K1)]) == 1
    assert match_count([(None, K1)], [("0xa", K2)]) == 0
    # and the reverse
    assert match_count([("0xa", K1)], [(None, K1)]) == 1
    # two identical trades in one second are two; a third archived one is extra
    assert match_count([(None, K1)] * 3, [("0xa", K1), ("0xb", K1)]) == 2
    assert match_count([(None, K1)] * 2, [("0xa", K1), ("0xb", K1), ("0xc", K1)]) == 2
    # a listed trade matched by hash is not matched again by key
    assert match_count([("0xa", K1), (None, K1)], [("0xa", K1)]) == 1
    # hashed archived trades that the history does not list by hash can still pair
    # with listed trades that have none, never with other hashed ones
    archived = [("0xa", K1), ("0xb", K1), (None, K1)]
    listed = [("0xc", K1), ("0xd", K1), (None, K1)]
    assert match_count(archived, listed) == 2  # 0xa with None, None with 0xc (or 0xd)


def _token_trades(root: Path, token: str) -> Any:
    trades = ssmd.read("trade", "polymarket", dir=root)
    return trades.filter(trades["instrument"] == token)


def _cut(root: Path, token: str, every: int) -> tuple[int, int]:
    """Drop every ``every``-th archive line holding a ``last_trade_price`` of ``token``;
    the trades those lines held, and how many of them had no transaction hash."""
    marker = f'"asset_id":"{token}","event_type":"last_trade_price"'.encode()
    lines = cut_lines(root, lambda line: marker in line, every)
    cut = sum(line.count(marker) for line in lines)
    hashless = cut - sum(line.count(b'"transaction_hash"') for line in lines)
    return cut, hashless


async def test_polymarket_compared_with_the_simulator_s_history(
    tmp_path: Path, make_sim: MakeSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.sleep(clear_of_midnight(dt.datetime.now(dt.timezone.utc)))
    sim = await make_sim("polymarket", rate=3000)
    cond = sim.venue.conditions[0]
    other = sim.venue.conditions[1]
    root = tmp_path / "a"
    async with capturing(sim, "polymarket", [cond.condition_id, other.condition_id], root) as cap:
        await async_wait_until(lambda: data_count(cap) >= 6000, timeout=30)
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=10)
    token = cond.yes
    mine = _token_trades(root, token)
    day = mine["rx"][0].date()
    n = mine.height
    hashed = mine["trade_id"].drop_nulls().len()
    assert n > 100
    assert 0 < hashed < n  # both match paths are taken
    # several trades share one second (the key match is a multiset)
    assert mine["ts"].dt.epoch("s").n_unique() < n

    assert polymarket_condition(root, token, day) == cond.condition_id
    url = sim.urls()["data"]
    # the whole history, in small pages
    monkeypatch.setattr(dq_rest, "POLYMARKET_LIMIT", 37)
    rest = await asyncio.to_thread(
        rest_trades, "polymarket", url, token, day, rate=0, archive_dir=root
    )
    assert len(rest) == n
    assert {t["trade_id"] for t in rest} >= set(mine["trade_id"].drop_nulls().to_list())
    report = await asyncio.to_thread(check_trades, root, "polymarket", token, day, rest_trades=rest)
    match = next(c for c in report.checks if c.name == "rest_match")
    assert (match.value, match.score) == (n, 1.0)
    assert (
        match.detail
        == f"{n} of the venue's {n} trades archived; 0 archived trades it does not list"
    )

    # through the CLI, at the venue's own rate and page size
    match_doc = await asyncio.to_thread(rest_match_json, root, "polymarket", token, day, url)
    assert (match_doc["value"], match_doc["score"]) == (n, 1.0)

    # trades the archive lost: counted, exactly, with and without their hash
    cut, hashless = await asyncio.to_thread(_cut, root, token, 4)
    assert cut > 0 and 0 < hashless < cut
    match_doc = await asyncio.to_thread(rest_match_json, root, "polymarket", token, day, url)
    assert match_doc["value"] == n - cut
    assert match_doc["score"] == pytest.approx((n - cut) / n)
    assert match_doc["detail"].endswith("0 archived trades it does not list")


async def test_polymarket_offset_limit(
    make_sim: MakeSim, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Data API pages by offset up to a limit: past it the client says so, naming the
    limit, and compares what it got."""
    await asyncio.sleep(clear_of_midnight(dt.datetime.now(dt.timezone.utc), margin=150))
    sim = await make_sim("polymarket", rate=0)
    cond = sim.venue.conditions[0]
    now = dt.datetime.now(dt.timezone.utc)
    ms = int(now.timestamp() * 1000)
    log = sim.venue.trade_log
    for i in range(100):
        token = cond.yes if i % 2 else cond.no
        log.add(cond.condition_id, ms - 100_000 + 1000 * i, token, "BUY", "1", "0.5", f"0x{i:064x}")
    url = sim.urls()["data"]
    monkeypatch.setattr(dq_rest, "POLYMARKET_LIMIT", 20)

    def fetch() -> list[dict[str, Any]]:
        return rest_trades(
            "polymarket", url, cond.yes, now.date(), rate=0, condition_id=cond.condition_id
        )

    # the venue refuses an offset past its limit with a 400
    sim.venue.data_max_offset = 40
    with caplog.at_level("WARNING", logger="ssmd.dq"):
        rest = await asyncio.to_thread(fetch)
    assert sorted(int(t["trade_id"], 16) for t in rest) == list(range(41, 100, 2))
    assert "answered HTTP 400 at offset 60" in caplog.text
    # ssmd does not ask past the limit it knows
    caplog.clear()
    sim.venue.data_max_offset = 10_000
    monkeypatch.setattr(dq_rest, "POLYMARKET_MAX_OFFSET", 20)
    with caplog.at_level("WARNING", logger="ssmd.dq"):
        rest = await asyncio.to_thread(fetch)
    assert sorted(int(t["trade_id"], 16) for t in rest) == list(range(61, 100, 2))
    assert "takes an offset up to 20" in caplog.text
    # the whole of it, in pages
    caplog.clear()
    monkeypatch.setattr(dq_rest, "POLYMARKET_MAX_OFFSET", 10_000)
    with caplog.at_level("WARNING", logger="ssmd.dq"):
        rest = await asyncio.to_thread(fetch)
    assert sorted(int(t["trade_id"], 16) for t in rest) == list(range(1, 100, 2))
    assert rest[0]["ts"] == (ms - 100_000 + 99_000) // 1000 * 1000
    assert "offset" not in caplog.text


def test_polymarket_needs_the_condition(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="by condition id"):
        rest_trades("polymarket", "http://127.0.0.1:1", "123", dt.date(2024, 3, 1))
    (tmp_path / "polymarket").mkdir()
    with pytest.raises(ConfigError, match="no polymarket frame of token '123'"):
        rest_trades(
            "polymarket", "http://127.0.0.1:1", "123", dt.date(2024, 3, 1), archive_dir=tmp_path
        )


def test_trade_log_is_bounded_and_newest_first() -> None:
    from ssmd.sim.polymarket.rest import TradeLog

    log = TradeLog(per_market=3)
    t0 = int(time.time() * 1000)
    for i in range(5):
        log.add("0xc", t0 + (i // 2) * 1000, "1", "BUY", "1", "0.5", f"0x{i}")
    got = [t[5] for _c, t in log.newest_first(None, None)]
    assert got == ["0x4", "0x3", "0x2"]
