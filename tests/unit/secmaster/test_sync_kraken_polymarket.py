"""Kraken (spot + perpetuals) and Polymarket (conditions + tokens) syncs against the
simulators' REST, real PostgreSQL."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from secmaster_venues import Venues, fetch, make_settings, start_venues, versions
from sim_client import MakeSim
from ssmd.secmaster.sync import Job, run_job, run_jobs
from ssmd.secmaster.sync.base import SyncResult

pytestmark = pytest.mark.integration


async def sync(dsn: str, venues: Venues, venue: str, **kw: Any) -> SyncResult:
    return await run_job(make_settings(dsn, venues, **kw), Job(venue))


# -- Kraken ----------------------------------------------------------------------------


async def test_kraken_spot_and_perpetuals(migrated: str, venues: Venues) -> None:
    spot, futures = venues.kraken.venue, venues.futures.venue
    r = await sync(migrated, venues, "kraken")
    assert r.ok, r.errors
    p = r.tables["pairs"]
    perpetuals = [x for x in futures.products if x.perpetual]
    assert len(perpetuals) < len(futures.products)  # a dated future is listed, not stored
    assert p.inserted == len(spot.pairs) + len(perpetuals)
    assert p.fetched == len(spot.pairs) + len(futures.products)
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
    assert {v["venue"]: v["n"] for v in view} == {
        "kraken": len(spot.pairs),
        "kraken-futures": len(perpetuals),
    }


async def test_kraken_resync_change_suspend_delist(migrated: str, venues: Venues) -> None:
    spot, futures = venues.kraken.venue, venues.futures.venue
    await sync(migrated, venues, "kraken")
    before = await versions(migrated, "pairs", "pair")
    r = await sync(migrated, venues, "kraken")
    assert (r.tables["pairs"].inserted, r.tables["pairs"].updated) == (0, 0)
    assert await versions(migrated, "pairs", "pair") == before

    spot.records.change("AssetPairs", "XXBTZUSD", tick_size="0.5")
    futures.records.change("tickers", "PF_XBTUSD", suspended=True)
    gone = "PF_ETHUSD"
    futures.records.hide("instruments", gone)
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
    venues.kraken.inject(
        "rest_response",
        path="/0/public/AssetPairs",
        body=b'{"error":["EService:Unavailable"],"result":{}}',
        count=2,
    )
    r = await sync(migrated, venues, "kraken", attempts=2)
    assert not r.ok and "EService:Unavailable" in r.errors[0]
    assert len(venues.kraken.rest_hits("/0/")) == 2
    # the futures half still went in, and nothing spot was marked
    perpetuals = [x for x in venues.futures.venue.products if x.perpetual]
    assert r.tables["pairs"].inserted == len(perpetuals)
    assert r.tables["pairs"].delisted == 0


# -- Polymarket -----------------------------------------------------------------------


async def test_polymarket_keyset_pages_conditions_and_tokens(
    migrated: str, make_sim: MakeSim
) -> None:
    venues = await start_venues(make_sim, polymarket=250)
    pm = venues.polymarket.venue
    r = await sync(migrated, venues, "polymarket")
    assert r.ok, r.errors
    assert r.tables["polymarket_conditions"].inserted == 250
    assert r.tables["polymarket_tokens"].inserted == 500
    hits = [h[1] for h in venues.polymarket.rest_hits("/markets/keyset")]
    assert len(hits) == 3 and "after_cursor" not in hits[0]
    assert all("after_cursor=" in h for h in hits[1:]) and "closed=false" in hits[0]
    first = pm.conditions[0]
    [c] = await fetch(
        migrated, "SELECT * FROM polymarket_conditions WHERE condition_id = $1", first.condition_id
    )
    assert c["status"] == "active" and c["outcomes"] == ["Yes", "No"]
    assert c["tick_size"] == Decimal(first.tick) / 1000 and c["event_slug"] == first.event["slug"]
    assert "outcomePrices" not in c["raw"] and "bestBid" not in c["raw"]
    toks = await fetch(
        migrated,
        "SELECT token_id, outcome, outcome_index FROM polymarket_tokens WHERE condition_id = $1"
        " ORDER BY outcome_index",
        first.condition_id,
    )
    assert [t["outcome"] for t in toks] == ["Yes", "No"]
    assert [t["token_id"] for t in toks] == [first.yes, first.no]  # > 2^64, kept as text


async def test_polymarket_resync_closed_and_delisted(migrated: str, venues: Venues) -> None:
    sim = venues.polymarket
    pm = sim.venue
    await sync(migrated, venues, "polymarket")
    before = await versions(migrated, "polymarket_conditions", "condition_id")
    r = await sync(migrated, venues, "polymarket")
    assert all((t.inserted, t.updated, t.delisted) == (0, 0, 0) for t in r.tables.values())
    assert await versions(migrated, "polymarket_conditions", "condition_id") == before

    closes, gone, quoted = (c for c in pm.conditions[:3])
    assert not (closes.closed or gone.closed or quoted.closed)
    closes.closed = True  # drops out of closed=false, still at Gamma (resolved)
    pm.records.hide("markets", gone.condition_id)  # gone from Gamma
    pm.records.change("markets", quoted.condition_id, bestBid=0.5)  # a quote: no write
    r = await sync(migrated, venues, "polymarket")
    assert r.ok, r.errors
    c = r.tables["polymarket_conditions"]
    assert (c.inserted, c.updated, c.delisted) == (0, 1, 1)
    assert r.tables["polymarket_tokens"].delisted == 2
    rows = {
        x["condition_id"]: x["status"]
        for x in await fetch(migrated, "SELECT condition_id, status FROM polymarket_conditions")
    }
    assert rows[closes.condition_id] == "settled" and rows[gone.condition_id] == "delisted"
    assert rows[quoted.condition_id] == "active"
    asked = [h[1] for h in sim.rest_hits("/markets/keyset") if "condition_ids=" in h[1]]
    assert len(asked) == 1
    assert closes.condition_id in asked[0] and gone.condition_id in asked[0]


async def test_polymarket_bad_records_and_stuck_cursor(
    migrated: str, make_sim: MakeSim, caplog: pytest.LogCaptureFixture
) -> None:
    venues = await start_venues(make_sim, polymarket=150)
    pm = venues.polymarket.venue
    good = pm.gamma_market(pm.conditions[0])
    broken = good | {"conditionId": "0x" + "b" * 64, "clobTokenIds": "[not json"}
    mismatched = good | {"conditionId": "0x" + "c" * 64, "clobTokenIds": '["1"]'}
    pm.records.add("markets", broken, mismatched, {"question": "no condition id", "id": "77"})
    with caplog.at_level(logging.WARNING, "ssmd.secmaster"):
        r = await sync(migrated, venues, "polymarket")
    assert r.ok, r.errors
    c = r.tables["polymarket_conditions"]
    assert c.skipped == 3 and c.inserted == 150
    assert broken["conditionId"] in caplog.text and "clobTokenIds" in caplog.text
    assert mismatched["conditionId"] in caplog.text and "77" in caplog.text

    pm.records.stuck_cursor = True
    r = await sync(migrated, venues, "polymarket")
    assert not r.ok and "cursor did not advance" in r.errors[0] and "after_cursor" in r.errors[0]
    assert r.tables["polymarket_conditions"].delisted == 0


async def test_all_venues_side_by_side(migrated: str, venues: Venues) -> None:
    venues.futures.inject(
        "rest_response", path="/derivatives/api/v3/instruments", status=429, retry_after="0.2"
    )
    results = await run_jobs(
        make_settings(migrated, venues), [Job("kalshi"), Job("kraken"), Job("polymarket")]
    )
    assert [r.name for r in results] == ["kalshi", "kraken", "polymarket"]
    assert all(r.ok for r in results), [r.errors for r in results]
    assert results[1].throttled == 1
    view = await fetch(migrated, "SELECT venue, count(*) AS n FROM instruments GROUP BY venue")
    assert {v["venue"] for v in view} == {"kalshi", "kraken", "kraken-futures", "polymarket"}
