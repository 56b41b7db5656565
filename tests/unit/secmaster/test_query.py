"""``show`` and ``search`` over the ``instruments`` view (real PostgreSQL)."""

from __future__ import annotations

import pytest

from secmaster_server import Venues, make_settings, polymarket_market
from ssmd.secmaster import db, query
from ssmd.secmaster.sync import Job, run_jobs

pytestmark = pytest.mark.integration


async def test_show_and_search(migrated: str, venues: Venues) -> None:
    results = await run_jobs(
        make_settings(migrated, venues), [Job("kalshi"), Job("kraken"), Job("polymarket")]
    )
    assert all(r.ok for r in results)
    conn = await db.connect(migrated)
    try:
        [pair] = await query.show(conn, "btc/usd")
        assert pair["venue"] == "kraken" and pair["instrument_id"] == "XXBTZUSD"
        m = polymarket_market(2)
        token = m["clobTokenIds"].split('"')[3]  # the "No" token
        [cond] = await query.show(conn, token)
        assert cond["instrument_id"] == m["conditionId"]
        assert [t["outcome"] for t in cond["tokens"]] == ["Yes", "No"]
        ticker = next(iter(venues.kalshi.markets))
        [mkt] = await query.show(conn, ticker.lower(), venue="kalshi")
        assert mkt["event"]["series_ticker"] == "KXS0000" and mkt["raw"]["ticker"] == ticker
        assert await query.show(conn, ticker, venue="polymarket") == []

        hits = await query.search(conn, "on jul 1, 2026?: $118,500", limit=500)
        assert len(hits) == len(venues.kalshi.series) and {h["venue"] for h in hits} == {"kalshi"}
        assert await query.search(conn, "100%") == []  # % is a character, not a wildcard
        under = await query.search(conn, "_")  # a character too: only the PF_ symbols have one
        assert {h["venue"] for h in under} == {"kraken-futures"} and len(under) == 2
        econ = await query.search(conn, "economics", venue="kalshi", status="active", limit=1000)
        assert econ and all(h["category"] == "Economics" for h in econ)
    finally:
        await conn.close()
