"""``ssmd secmaster schedule``: every sync on its interval, no overlap, each run logged."""

from __future__ import annotations

import logging

import pytest

from secmaster_venues import Venues, make_settings
from ssmd.errors import ConfigError
from ssmd.secmaster import db
from ssmd.secmaster.schedule import Entry, default_entries, parse_interval, run_schedule
from ssmd.secmaster.sync import Job


def test_parse_interval() -> None:
    assert parse_interval("6h") == 21600 and parse_interval("30m") == 1800
    assert parse_interval("90") == 90 and parse_interval("1.5s") == 1.5
    for bad in ("", "0", "6x", "-1h"):
        with pytest.raises(ConfigError):
            parse_interval(bad)


async def test_kalshi_entries_per_discovered_category(venues: Venues) -> None:
    s = make_settings(None, venues)
    entries = await default_entries(s, interval=60)
    names = [e.job.name for e in entries]
    cats = sorted({x["category"] for x in venues.kalshi.venue.series})
    assert names == [f"kalshi:{c}" for c in cats] + ["kraken", "polymarket"]
    one = await default_entries(s, interval=60, per_category=False, venues=["kalshi"])
    assert [e.job.name for e in one] == ["kalshi"]


@pytest.mark.integration
async def test_runs_each_sync_on_its_interval_and_logs(
    migrated: str, venues: Venues, caplog: pytest.LogCaptureFixture
) -> None:
    s = make_settings(migrated, venues)
    entries = [
        Entry(Job("kraken"), 0.3),
        Entry(Job("polymarket"), 0.3),
        Entry(Job("kalshi", ("Crypto",)), 0.3),
    ]
    with caplog.at_level(logging.INFO, "ssmd.secmaster"):
        await run_schedule(s, entries, jitter=0.2, runs=2)
    crypto = [s for s in venues.kalshi.venue.series if s["category"] == "Crypto"]
    for sim, path, per_run in (
        (venues.kraken, "/0/public/AssetPairs", 1),
        (venues.polymarket, "/markets/keyset", 1),
        (venues.kalshi, "/trade-api/v2/markets", len(crypto)),  # one listing per series
    ):
        assert len(sim.rest_hits(path)) == 2 * per_run, path
    text = caplog.text
    assert text.count("sync kraken done in") == 2 and text.count("sync polymarket done in") == 2
    assert "sync kalshi:Crypto done in" in text and "pairs fetched" in text


@pytest.mark.integration
async def test_a_sync_running_elsewhere_is_skipped(
    migrated: str, venues: Venues, caplog: pytest.LogCaptureFixture
) -> None:
    holder = await db.connect(migrated)  # another process running the kraken sync
    try:
        await holder.execute("SELECT pg_advisory_lock(hashtext('ssmd.sync:kraken'))")
        with caplog.at_level(logging.INFO, "ssmd.secmaster"):
            await run_schedule(
                make_settings(migrated, venues), [Entry(Job("kraken"), 0.1)], jitter=0, runs=1
            )
    finally:
        await holder.close()
    assert "another kraken sync is running" in caplog.text
    assert venues.kraken.rest_log == [] and venues.futures.rest_log == []
