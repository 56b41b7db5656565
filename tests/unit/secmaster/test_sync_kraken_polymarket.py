"""Kraken (spot + perpetuals) and Polymarket (conditions + tokens) syncs, real PostgreSQL."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from secmaster_server import (
    FUTURES,
    GAMMA,
    KRAKEN,
    Venues,
    fetch,
    make_settings,
    polymarket_market,
    too_many,
    versions,
)
from ssmd.secmaster.sync import Job, run_job, run_jobs
from ssmd.secmaster.sync.base import SyncResult

pytestmark = pytest.mark.integration


async def sync(dsn: str, venues: Venues, venue: str, **kw: Any) -> SyncResult:
    return await run_job(make_settings(dsn, venues, **kw), Job(venue))


# -- Kraken ----------------------------------------------------------------------------


async def test_kraken_spot_and_perpetuals(migrated: str, venues: Venues) -> None:
    kr = venues.kraken
    r = await sync(migrated, venues, "kraken")
    assert r.ok, r.errors
    p = r.tables["pairs"]
    n_perp = len(kr.instruments) - 1  # the dated future is not stored
    assert p.inserted == len(kr.pairs) + n_perp and p.fetched == len(kr.pairs) + len(kr.instruments)
    rows = {x["pair"]: x for x in await fetch(migrated, "SELECT * FROM pairs")}
    btc = rows["XXBTZUSD"]
    assert (btc["market_type"], btc["symbol"], btc["wsname"]) == ("spot", "BTC/USD", "XBT/USD")
    assert (btc["base"], btc["quote"], btc["status"]) == ("BTC", "USD", "online")
    assert (btc["tick_size"], btc["price_precision"], btc["qty_precision"]) == (
        Decimal("0.1"),
        1,
        8,
    )
    perp = rows["PF_XBTUSD"]
    assert (perp["market_type"], perp["symbol"], perp["status"]) == (
        "perpetual",
        "PF_XBTUSD",
        "online",
    )
    assert perp["opening_date"].year == 2022 and perp["contract_size"] == 1
    assert "FF_XBTUSD_261225" not in rows
    view = await fetch(migrated, "SELECT venue, count(*) AS n FROM instruments GROUP BY venue")
    assert {v["venue"]: v["n"] for v in view} == {"kraken": len(kr.pairs), "kraken-futures": n_perp}


async def test_kraken_resync_change_suspend_delist(migrated: str, venues: Venues) -> None:
    kr = venues.kraken
    await sync(migrated, venues, "kraken")
    before = await versions(migrated, "pairs", "pair")
    r = await sync(migrated, venues, "kraken")
    assert (r.tables["pairs"].inserted, r.tables["pairs"].updated) == (0, 0)
    assert await versions(migrated, "pairs", "pair") == before

    kr.pairs["XXBTZUSD"]["tick_size"] = "0.5"
    kr.suspended.add("PF_XBTUSD")
    gone = kr.instruments.pop(1)["symbol"]
    r = await sync(migrated, venues, "kraken")
    p = r.tables["pairs"]
    assert (p.updated, p.delisted) == (2, 1)
    after = await versions(migrated, "pairs", "pair")
    assert {k for k in after if after[k] != before[k]} == {"XXBTZUSD", "PF_XBTUSD", gone}
    rows = {
        x["pair"]: x for x in await fetch(migrated, "SELECT pair, status, tick_size FROM pairs")
    }
    assert rows["XXBTZUSD"]["tick_size"] == Decimal("0.5")
    assert rows["PF_XBTUSD"]["status"] == "suspended" and rows[gone]["status"] == "delisted"


async def test_kraken_error_envelope_is_retried_then_reported(
    migrated: str, venues: Venues
) -> None:
    venues.kraken.spot_error = ["EService:Unavailable"]
    r = await sync(migrated, venues, "kraken", attempts=2)
    assert not r.ok and "EService:Unavailable" in r.errors[0]
    assert len(venues.server.hits_to(KRAKEN)) == 2
    # the futures half still went in, and nothing spot was marked
    assert r.tables["pairs"].inserted == len(venues.kraken.instruments) - 1
    assert r.tables["pairs"].delisted == 0


# -- Polymarket -----------------------------------------------------------------------


async def test_polymarket_keyset_pages_conditions_and_tokens(migrated: str, venues: Venues) -> None:
    pm = venues.polymarket
    pm.markets = {m["conditionId"]: m for m in map(polymarket_market, range(250))}
    r = await sync(migrated, venues, "polymarket")
    assert r.ok, r.errors
    assert r.tables["polymarket_conditions"].inserted == 250
    assert r.tables["polymarket_tokens"].inserted == 500
    hits = [h[1] for h in venues.server.hits_to(GAMMA)]
    assert len(hits) == 3 and "after_cursor" not in hits[0]
    assert all("after_cursor=" in h for h in hits[1:]) and "closed=false" in hits[0]
    first = polymarket_market(0)
    [c] = await fetch(
        migrated,
        "SELECT * FROM polymarket_conditions WHERE condition_id = $1",
        first["conditionId"],
    )
    assert c["status"] == "active" and c["category"] == "Finance" and c["outcomes"] == ["Yes", "No"]
    assert c["tick_size"] == Decimal("0.01") and c["event_slug"] == "nvda-above-in-january-2026"
    assert "outcomePrices" not in c["raw"] and "bestBid" not in c["raw"]
    toks = await fetch(
        migrated,
        "SELECT token_id, outcome, outcome_index FROM polymarket_tokens WHERE condition_id = $1"
        " ORDER BY outcome_index",
        first["conditionId"],
    )
    assert [t["outcome"] for t in toks] == ["Yes", "No"]
    assert toks[0]["token_id"] == first["clobTokenIds"].split('"')[1]  # > 2^64, kept as text


async def test_polymarket_resync_closed_and_delisted(migrated: str, venues: Venues) -> None:
    pm = venues.polymarket
    await sync(migrated, venues, "polymarket")
    before = await versions(migrated, "polymarket_conditions", "condition_id")
    r = await sync(migrated, venues, "polymarket")
    assert all((t.inserted, t.updated, t.delisted) == (0, 0, 0) for t in r.tables.values())
    assert await versions(migrated, "polymarket_conditions", "condition_id") == before

    ids = list(pm.markets)
    pm.markets[ids[0]]["closed"] = True  # drops out of closed=false, still at Gamma
    pm.markets[ids[0]]["umaResolutionStatus"] = "resolved"
    del pm.markets[ids[1]]  # gone from Gamma
    pm.markets[ids[2]]["bestBid"] = 0.5  # a quote: no write
    r = await sync(migrated, venues, "polymarket")
    assert r.ok, r.errors
    c = r.tables["polymarket_conditions"]
    assert (c.inserted, c.updated, c.delisted) == (0, 1, 1)
    assert r.tables["polymarket_tokens"].delisted == 2
    rows = {
        x["condition_id"]: x["status"]
        for x in await fetch(migrated, "SELECT condition_id, status FROM polymarket_conditions")
    }
    assert rows[ids[0]] == "settled" and rows[ids[1]] == "delisted" and rows[ids[2]] == "active"
    asked = [h[1] for h in venues.server.hits_to(GAMMA) if "condition_ids=" in h[1]]
    assert len(asked) == 1 and ids[0] in asked[0] and ids[1] in asked[0]


async def test_polymarket_bad_records_and_stuck_cursor(
    migrated: str, venues: Venues, caplog: pytest.LogCaptureFixture
) -> None:
    pm = venues.polymarket
    pm.markets = {m["conditionId"]: m for m in map(polymarket_market, range(150))}
    broken = polymarket_market(900)
    broken["clobTokenIds"] = "[not json"
    mismatched = polymarket_market(901)
    mismatched["clobTokenIds"] = '["1"]'
    pm.extra = [broken, mismatched, {"question": "no condition id", "id": "77"}]
    with caplog.at_level(logging.WARNING, "ssmd.secmaster"):
        r = await sync(migrated, venues, "polymarket")
    assert r.ok, r.errors
    c = r.tables["polymarket_conditions"]
    assert c.skipped == 3 and c.inserted == 150
    assert broken["conditionId"] in caplog.text and "clobTokenIds" in caplog.text
    assert mismatched["conditionId"] in caplog.text and "77" in caplog.text

    pm.stuck_cursor = True
    r = await sync(migrated, venues, "polymarket")
    assert not r.ok and "cursor did not advance" in r.errors[0] and "after_cursor" in r.errors[0]
    assert r.tables["polymarket_conditions"].delisted == 0


async def test_all_venues_side_by_side(migrated: str, venues: Venues) -> None:
    venues.server.inject(FUTURES + "/instruments", too_many("0.2"))
    results = await run_jobs(
        make_settings(migrated, venues), [Job("kalshi"), Job("kraken"), Job("polymarket")]
    )
    assert [r.name for r in results] == ["kalshi", "kraken", "polymarket"]
    assert all(r.ok for r in results), [r.errors for r in results]
    view = await fetch(migrated, "SELECT venue, count(*) AS n FROM instruments GROUP BY venue")
    assert {v["venue"] for v in view} == {"kalshi", "kraken", "kraken-futures", "polymarket"}
