"""``show`` and ``search`` over the ``instruments`` view (real PostgreSQL), synced from the
simulators."""

from __future__ import annotations

import pytest

from secmaster_venues import Venues, make_settings
from ssmd.secmaster import db, query
from ssmd.secmaster.sync import Job, run_jobs

pytestmark = pytest.mark.integration


async def test_show_and_search(migrated: str, venues: Venues) -> None:
    results = await run_jobs(
        make_settings(migrated, venues), [Job("kalshi"), Job("kraken"), Job("polymarket")]
    )
    assert all(r.ok for r in results)
    k, pm = venues.kalshi.venue, venues.polymarket.venue
    conn = await db.connect(migrated)
    try:
        [pair] = await query.show(conn, "btc/usd")
        assert pair["venue"] == "kraken" and pair["instrument_id"] == "XXBTZUSD"
        c = pm.conditions[2]
        [cond] = await query.show(conn, c.no)  # a token finds its condition
        assert cond["instrument_id"] == c.condition_id
        assert [t["outcome"] for t in cond["tokens"]] == ["Yes", "No"]
        market = k.markets[0]
        [mkt] = await query.show(conn, market.ticker.lower(), venue="kalshi")
        assert mkt["event"]["series_ticker"] == market.series
        assert mkt["raw"]["ticker"] == market.ticker
        assert await query.show(conn, market.ticker, venue="polymarket") == []

        text = "on nov 25, 2026?"  # in the title of every first-round event
        titles = {e["event_ticker"]: e["title"].lower() for e in k.events}
        expected = sum(1 for m in k.markets if text in titles[m.event])
        hits = await query.search(conn, text, limit=500)
        assert 0 < len(hits) == expected and {h["venue"] for h in hits} == {"kalshi"}
        assert await query.search(conn, "100%") == []  # % is a character, not a wildcard
        under = await query.search(conn, "_", limit=500)  # a character too
        perpetuals = {p.symbol for p in venues.futures.venue.products if p.perpetual}
        assert {h["instrument_id"] for h in under} == perpetuals
        econ = await query.search(conn, "economics", venue="kalshi", status="active", limit=1000)
        assert econ and all(h["category"] == "Economics" for h in econ)

        # several venues: any of them; none: every venue
        every = await query.search(conn, "usd", limit=5000)
        assert {h["venue"] for h in every} >= {"kraken", "kraken-futures"}
        two = await query.search(conn, "usd", venue=["kraken", "kraken-futures"], limit=5000)
        assert two == [h for h in every if h["venue"] in ("kraken", "kraken-futures")]
        assert await query.search(conn, "usd", venue=[], limit=5000) == every
        [pair] = await query.show(conn, "btc/usd", venue=["kalshi", "kraken"])
        assert pair["instrument_id"] == "XXBTZUSD"
        assert await query.show(conn, "btc/usd", venue=["kalshi", "polymarket"]) == []
    finally:
        await conn.close()
