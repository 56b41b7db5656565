"""Kalshi sync against the Kalshi simulator's REST and a real PostgreSQL."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from secmaster_venues import Venues, fetch, make_settings, versions
from ssmd.secmaster import db
from ssmd.secmaster.sync import Job, run_job
from ssmd.secmaster.sync import kalshi as kalshi_sync
from ssmd.secmaster.sync.base import SyncResult
from ssmd.sim.kalshi import STATUS_FILTERS

pytestmark = pytest.mark.integration

ROOT = "/trade-api/v2"
HTML_PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>"


async def sync(dsn: str, venues: Venues, **job: Any) -> SyncResult:
    return await run_job(make_settings(dsn, venues), Job("kalshi", **job))


async def test_first_sync_inserts_every_row(migrated: str, venues: Venues) -> None:
    k = venues.kalshi.venue
    r = await sync(migrated, venues)
    assert r.ok, r.errors
    t = r.tables
    assert (t["series"].inserted, t["events"].inserted, t["markets"].inserted) == (
        len(k.series),
        len(k.events),
        len(k.markets),
    )
    changes = k.fee_changes()
    assert t["series_fees"].inserted == len(changes)
    assert all(s.updated == 0 and s.skipped == 0 for s in t.values())

    first = k.markets[0]
    [m] = await fetch(migrated, "SELECT * FROM markets WHERE ticker = $1", first.ticker)
    assert m["status"] == first.status == "active" and m["market_type"] == "binary"
    assert m["tick_size"] == Decimal("0.01") and m["floor_strike"] == Decimal(str(first.strike))
    assert m["close_time"].isoformat() == "2026-12-31T21:00:00+00:00"
    assert m["delisted_at"] is None
    # quote and volume fields are not kept in raw; the definition is
    assert '"rules_primary"' in m["raw"] and "yes_bid_dollars" not in m["raw"]

    twice = changes[0]["series_ticker"]  # the first series changes its fees twice
    fees = await fetch(
        migrated,
        "SELECT effective_from, effective_to FROM series_fees WHERE series_ticker = $1"
        " ORDER BY effective_from",
        twice,
    )
    assert len(fees) == 2 and fees[0]["effective_to"] == fees[1]["effective_from"]
    assert fees[1]["effective_to"] is None

    view = await fetch(migrated, "SELECT * FROM instruments WHERE venue = 'kalshi'")
    assert len(view) == len(k.markets)
    assert {v["category"] for v in view} == {s["category"] for s in k.series}
    assert all(v["title"] and v["kind"] == "binary" for v in view)


async def test_resync_without_changes_writes_nothing(migrated: str, venues: Venues) -> None:
    await sync(migrated, venues)
    before = {t: await versions(migrated, t, k) for t, k in _KEYS.items()}
    r = await sync(migrated, venues)
    assert r.ok, r.errors
    for stats in r.tables.values():
        assert (stats.inserted, stats.updated, stats.delisted) == (0, 0, 0), stats
        assert stats.unchanged == stats.rows > 0
    after = {t: await versions(migrated, t, k) for t, k in _KEYS.items()}
    assert after == before  # not one tuple rewritten


_KEYS = {
    "series": "ticker",
    "events": "event_ticker",
    "markets": "ticker",
    "series_fees": "source_id",
}


async def test_changed_market_updates_exactly_that_row(migrated: str, venues: Venues) -> None:
    await sync(migrated, venues)
    before = await versions(migrated, "markets", "ticker")
    records = venues.kalshi.venue.records
    tickers = venues.kalshi.venue.instrument_ids()
    changed, quoted = tickers[3], tickers[4]
    records.change("markets", changed, close_time="2026-12-31T22:00:00Z")
    records.change("markets", quoted, yes_bid_dollars="0.4400")  # a quote, not a definition
    r = await sync(migrated, venues)
    assert r.tables["markets"].updated == 1 and r.tables["markets"].inserted == 0
    after = await versions(migrated, "markets", "ticker")
    assert {t for t in after if after[t] != before[t]} == {changed}
    [m] = await fetch(migrated, "SELECT close_time FROM markets WHERE ticker = $1", changed)
    assert m["close_time"].hour == 22


async def test_delisted_market_is_marked_not_deleted(migrated: str, venues: Venues) -> None:
    k = venues.kalshi.venue
    await sync(migrated, venues)
    gone = k.instrument_ids()[0]
    k.records.hide("markets", gone)  # the venue stops listing it
    r = await sync(migrated, venues)
    assert r.tables["markets"].delisted == 1
    [m] = await fetch(migrated, "SELECT status, delisted_at FROM markets WHERE ticker = $1", gone)
    assert m["status"] == "delisted" and m["delisted_at"] is not None
    assert len(await fetch(migrated, "SELECT 1 FROM markets")) == len(k.markets)  # nothing deleted

    # listed again: back to the venue's status
    k.records.show("markets", gone)
    r = await sync(migrated, venues)
    assert r.tables["markets"].updated == 1
    [m] = await fetch(migrated, "SELECT status, delisted_at FROM markets WHERE ticker = $1", gone)
    assert (m["status"], m["delisted_at"]) == ("active", None)


async def test_status_filter_marks_nothing_delisted(migrated: str, venues: Venues) -> None:
    k = venues.kalshi.venue
    await sync(migrated, venues)
    closed = k.instrument_ids()[:2]
    for t in closed:
        k.by_ticker[t].status = "closed"
    r = await sync(migrated, venues, status="open")
    assert r.ok, r.errors
    open_now = [m for m in k.markets if m.status in STATUS_FILTERS["open"]]
    assert r.tables["markets"].fetched == len(open_now) < len(k.markets) - 2
    assert r.tables["markets"].delisted == 0 and r.tables["events"].delisted == 0
    rows = await fetch(migrated, "SELECT status FROM markets WHERE ticker = ANY($1)", closed)
    assert {x["status"] for x in rows} == {"active"}  # not listed with status=open: untouched


async def test_category_sync_lists_its_series_only(migrated: str, venues: Venues) -> None:
    k = venues.kalshi.venue
    r = await sync(migrated, venues, categories=("Economics",))
    assert r.ok, r.errors
    econ = {s["ticker"] for s in k.series if s["category"] == "Economics"}
    assert econ and r.tables["series"].inserted == len(econ)
    rows = await fetch(migrated, "SELECT DISTINCT series_ticker FROM events")
    assert {x["series_ticker"] for x in rows} == econ
    assert r.tables["markets"].inserted == sum(1 for m in k.markets if m.series in econ)
    hits = [h[1] for h in venues.kalshi.rest_hits(ROOT + "/markets")]
    assert hits and all("series_ticker=" in h for h in hits)


async def test_429_with_retry_after_pauses_the_venue(migrated: str, venues: Venues) -> None:
    sim = venues.kalshi
    sim.inject("rest_response", path=ROOT + "/markets", status=429, retry_after="1")
    r = await sync(migrated, venues)
    assert r.ok, r.errors
    assert r.throttled == 1 and r.tables["markets"].inserted == len(sim.venue.markets)
    hits = sim.rest_hits(ROOT)
    [t429] = [t for t, _, status in hits if status == 429]
    after = [t for t, _, _ in hits if t > t429]
    assert after, "nothing requested after the 429"
    # every request to the venue waited, not just the retried one
    assert min(after) - t429 >= 0.95


async def test_non_advancing_cursor_is_reported(
    migrated: str, venues: Venues, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sync(migrated, venues)
    monkeypatch.setattr(kalshi_sync, "MARKETS_PAGE", 5)
    venues.kalshi.venue.records.stuck_cursor = True
    before = len(venues.kalshi.rest_hits(ROOT + "/markets"))
    with caplog.at_level(logging.INFO, "ssmd.secmaster"):
        r = await sync(migrated, venues)
    assert not r.ok
    assert any("cursor did not advance" in e and "/markets" in e for e in r.errors), r.errors
    assert "cursor did not advance" in caplog.text
    assert r.tables["markets"].delisted == 0  # an incomplete listing marks nothing
    rows = await fetch(migrated, "SELECT count(*) AS n FROM markets WHERE status = 'delisted'")
    assert rows[0]["n"] == 0
    assert len(venues.kalshi.rest_hits(ROOT + "/markets")) - before < 10


async def test_bad_records_are_skipped_and_logged(
    migrated: str, venues: Venues, caplog: pytest.LogCaptureFixture
) -> None:
    sim = venues.kalshi
    k = sim.venue
    good = k.market_json(k.markets[0])
    bad_type = good | {"ticker": "KXBAD-26DEC31-T1", "close_time": 1752958800}  # a number
    bad_value = good | {"ticker": "KXBAD-26DEC31-T2", "floor_strike": "lots"}
    no_ticker = {key: v for key, v in good.items() if key != "ticker"}
    k.records.add("markets", bad_type, bad_value, no_ticker, "not an object")
    sim.inject("rest_response", path=ROOT + "/events", body=HTML_PAGE, content_type="text/html")
    with caplog.at_level(logging.INFO, "ssmd.secmaster"):
        r = await sync(migrated, venues)
    assert r.ok, r.errors
    m = r.tables["markets"]
    assert m.skipped == 4 and m.inserted == len(k.markets)
    assert r.tables["events"].inserted == len(k.events)
    text = caplog.text
    assert bad_type["ticker"] in text and "close_time" in text
    assert bad_value["ticker"] in text and "floor_strike" in text
    assert "ticker is missing" in text and "not a JSON page" in text and "text/html" in text


async def test_resync_produces_no_cdc_events(migrated: str, venues: Venues) -> None:
    """What logical decoding (wal2json, the CDC of docs/cdc.md) sees of a re-sync."""
    await sync(migrated, venues)
    conn = await db.connect(migrated)
    try:
        await conn.execute(
            "SELECT pg_create_logical_replication_slot('secmaster_test', 'wal2json')"
        )

        async def changes() -> list[dict[str, Any]]:
            rows = await conn.fetch(
                "SELECT data FROM pg_logical_slot_get_changes('secmaster_test', NULL, NULL,"
                " 'format-version', '2')"
            )
            out = [json.loads(r["data"]) for r in rows]
            return [c for c in out if c.get("action") in ("I", "U", "D")]

        await sync(migrated, venues)
        assert await changes() == []
        ticker = venues.kalshi.venue.instrument_ids()[0]
        venues.kalshi.venue.records.change("markets", ticker, title="renamed")
        await sync(migrated, venues)
        got = await changes()
        assert [(c["action"], c["table"]) for c in got] == [("U", "markets")]
        assert {"name": "ticker", "type": "text", "value": ticker} in got[0]["identity"]
    finally:
        await conn.close()
