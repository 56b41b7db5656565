"""Kalshi: ``/series``, ``/series/fee_changes``, ``/events`` and ``/markets`` into PostgreSQL.

Without ``categories`` the events and markets listings are global (cursor
pages of 200 events and 1000 markets); with them, each series of those
categories is listed on its own (``series_ticker=``). A complete listing
without a ``status`` filter marks the rows it no longer returns (within
the synced categories) as delisted; a filtered or failed listing marks
nothing. Markets of multivariate events are left out (``mve_filter=exclude``),
like the events endpoint does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ssmd.errors import ConfigError, ConnectorError
from ssmd.secmaster import db
from ssmd.secmaster.config import KALSHI_STATUS_FILTERS, VenueApi
from ssmd.secmaster.http import VenueClient, cursor_pages
from ssmd.secmaster.sync.base import (
    BadRecord,
    NullProgress,
    Progress,
    SyncResult,
    Timer,
    Volatile,
    Writer,
    failed,
    gather_or_cancel,
    opt_bool,
    opt_dec,
    opt_str,
    opt_ts,
    raw_json,
    req_str,
    run_listing,
)

__all__ = ["EVENTS", "FEES", "MARKETS", "SERIES", "STATUS_FILTERS", "sync_kalshi"]

STATUS_FILTERS = KALSHI_STATUS_FILTERS
EVENTS_PAGE = 200
MARKETS_PAGE = 1000

SERIES = db.Table(
    "series",
    "ticker",
    (
        "ticker",
        "title",
        "category",
        "tags",
        "frequency",
        "fee_type",
        "fee_multiplier",
        "status",
        "raw",
    ),
)
FEES = db.Table(
    "series_fees",
    "source_id",
    (
        "source_id",
        "series_ticker",
        "fee_type",
        "fee_multiplier",
        "effective_from",
        "effective_to",
        "status",
        "raw",
    ),
)
EVENTS = db.Table(
    "events",
    "event_ticker",
    (
        "event_ticker",
        "series_ticker",
        "title",
        "sub_title",
        "mutually_exclusive",
        "collateral_return_type",
        "strike_date",
        "strike_period",
        "status",
        "raw",
    ),
)
MARKETS = db.Table(
    "markets",
    "ticker",
    (
        "ticker",
        "event_ticker",
        "market_type",
        "title",
        "yes_sub_title",
        "no_sub_title",
        "status",
        "open_time",
        "close_time",
        "expected_expiration_time",
        "latest_expiration_time",
        "strike_type",
        "floor_strike",
        "cap_strike",
        "tick_size",
        "price_level_structure",
        "can_close_early",
        "fractional_trading_enabled",
        "notional_value_dollars",
        "result",
        "settlement_value_dollars",
        "settlement_ts",
        "raw",
    ),
)

# Per-trade fields left out of ``raw`` (quotes, sizes, volume, open interest).
_SERIES_VOLATILE = Volatile(r"^volume")
_EVENT_VOLATILE = Volatile(r"^(volume|open_interest|liquidity|markets$)")
_MARKET_VOLATILE = Volatile(
    r"^(yes_bid|yes_ask|no_bid|no_ask|last_price|previous_|volume|open_interest|liquidity)"
)


def _tags(rec: dict[str, Any]) -> list[str] | None:
    tags = rec.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadRecord("tags: expected a list of strings")
    return tags


def series_row(rec: dict[str, Any]) -> tuple[Any, ...]:
    return (
        req_str(rec, "ticker"),
        opt_str(rec, "title"),
        opt_str(rec, "category"),
        _tags(rec),
        opt_str(rec, "frequency"),
        opt_str(rec, "fee_type"),
        opt_dec(rec, "fee_multiplier"),
        "active",
        raw_json(rec, _SERIES_VOLATILE),
    )


def fee_row(rec: dict[str, Any]) -> tuple[Any, ...]:
    effective_from = opt_ts(rec, "scheduled_ts")
    if effective_from is None:
        raise BadRecord("scheduled_ts is missing")
    return (
        req_str(rec, "id"),
        req_str(rec, "series_ticker"),
        req_str(rec, "fee_type"),
        opt_dec(rec, "fee_multiplier"),
        effective_from,
        None,  # effective_to: filled from the next change of the series
        "active",
        raw_json(rec),
    )


def event_row(rec: dict[str, Any]) -> tuple[Any, ...]:
    return (
        req_str(rec, "event_ticker"),
        req_str(rec, "series_ticker"),
        opt_str(rec, "title"),
        opt_str(rec, "sub_title"),
        opt_bool(rec, "mutually_exclusive"),
        opt_str(rec, "collateral_return_type"),
        opt_ts(rec, "strike_date"),
        opt_str(rec, "strike_period"),
        "active",
        raw_json(rec, _EVENT_VOLATILE),
    )


def _tick_size(rec: dict[str, Any]) -> Decimal | None:
    """Smallest ``price_ranges`` step in dollars, else the deprecated cent ``tick_size``."""
    ranges = rec.get("price_ranges")
    if ranges:
        if not isinstance(ranges, list):
            raise BadRecord("price_ranges: expected a list")
        steps = [opt_dec(r, "step") for r in ranges if isinstance(r, dict)]
        found = [s for s in steps if s is not None and s > 0]
        if found:
            return min(found)
    cents = opt_dec(rec, "tick_size")
    return cents / 100 if cents is not None else None


def market_row(rec: dict[str, Any]) -> tuple[Any, ...]:
    return (
        req_str(rec, "ticker"),
        req_str(rec, "event_ticker"),
        opt_str(rec, "market_type"),
        opt_str(rec, "title"),
        opt_str(rec, "yes_sub_title"),
        opt_str(rec, "no_sub_title"),
        req_str(rec, "status"),
        opt_ts(rec, "open_time"),
        opt_ts(rec, "close_time"),
        opt_ts(rec, "expected_expiration_time"),
        opt_ts(rec, "latest_expiration_time"),
        opt_str(rec, "strike_type"),
        opt_dec(rec, "floor_strike"),
        opt_dec(rec, "cap_strike"),
        _tick_size(rec),
        opt_str(rec, "price_level_structure"),
        opt_bool(rec, "can_close_early"),
        opt_bool(rec, "fractional_trading_enabled"),
        opt_dec(rec, "notional_value_dollars"),
        opt_str(rec, "result"),
        opt_dec(rec, "settlement_value_dollars"),
        opt_ts(rec, "settlement_ts"),
        raw_json(rec, _MARKET_VOLATILE),
    )


def _with_effective_to(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Close each fee window at the next scheduled change of the same series."""
    by_series: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_series.setdefault(row[1], []).append(row)
    out: list[tuple[Any, ...]] = []
    for changes in by_series.values():
        changes.sort(key=lambda r: r[4])
        nexts: list[dt.datetime | None] = [r[4] for r in changes[1:]] + [None]
        out.extend((*r[:5], nxt, *r[6:]) for r, nxt in zip(changes, nexts, strict=True))
    return out


async def _series(
    client: VenueClient, writer: Writer, progress: Progress, categories: Sequence[str]
) -> list[str] | None:
    """Sync the series; return the tickers in scope, or None if the listing failed."""
    task = progress.add("kalshi series")
    tickers: list[str] = []
    try:
        for params in [[("category", c)] for c in categories] or [[]]:
            pages = cursor_pages(
                client,
                "/series",
                params,
                items_key="series",
                cursor_param="cursor",
                cursor_key="cursor",
            )
            async with contextlib.aclosing(pages):
                async for items in pages:
                    rows = writer.parse("series", "series", items, series_row, ("ticker",))
                    await writer.add(SERIES, rows)
                    tickers.extend(r[0] for r in rows)
                    progress.advance(task, len(items))
    except ConnectorError as exc:
        failed(writer.result, "series listing", exc)
        return None
    finally:
        progress.done(task)
    if categories:
        await writer.delist(SERIES, "t.category IN (SELECT unnest($2::text[]))", list(categories))
    else:
        await writer.delist(SERIES)
    return tickers


async def _fees(
    client: VenueClient, writer: Writer, progress: Progress, scope: set[str] | None
) -> None:
    task = progress.add("kalshi fee changes")
    try:
        body = await client.get_json(
            "/series/fee_changes",
            [("show_historical", "true")],
            check=lambda b: (
                None
                if isinstance(b, dict) and isinstance(b.get("series_fee_change_arr", []), list)
                else "expected {'series_fee_change_arr': [...]}"
            ),
        )
    except ConnectorError as exc:
        progress.done(task)
        failed(writer.result, "fee changes", exc)
        return
    items = body.get("series_fee_change_arr") or []
    progress.advance(task, len(items))
    progress.done(task)
    rows = writer.parse("series_fees", "fee change", items, fee_row, ("id", "series_ticker"))
    if scope is not None:
        rows = [r for r in rows if r[1] in scope]
    await writer.add(FEES, _with_effective_to(rows))
    if scope is None:
        await writer.delist(FEES)
    else:
        await writer.delist(FEES, "t.series_ticker IN (SELECT unnest($2::text[]))", sorted(scope))


async def sync_kalshi(
    conn: Any,
    api: VenueApi,
    *,
    categories: Sequence[str] = (),
    status: str | None = None,
    progress: Progress | None = None,
    flush_rows: int = 5000,
    name: str | None = None,
) -> SyncResult:
    """Sync Kalshi series, fee changes, events and markets; return the summary."""
    if status is not None and status not in STATUS_FILTERS:
        raise ConfigError(f"unknown Kalshi status {status!r} (one of: {', '.join(STATUS_FILTERS)})")
    progress = progress or NullProgress()
    timer = Timer()
    name = name or "kalshi" + (f":{','.join(categories)}" if categories else "")
    result = SyncResult(name)
    writer = Writer(conn, result, flush_rows)
    async with VenueClient(api) as client:
        series = await _series(client, writer, progress, categories)
        scope = None if not categories or series is None else set(series)
        await _fees(client, writer, progress, scope)
        if categories and series is None:
            result.errors.append("kalshi: events and markets not synced (series listing failed)")
        else:
            scopes: list[list[tuple[str, str | int]]] = (
                [[("series_ticker", s)] for s in sorted(scope)] if scope is not None else [[]]
            )
            flt: list[tuple[str, str | int]] = [("status", status)] if status else []
            gate = asyncio.Semaphore(api.concurrency)
            tasks = {
                EVENTS.name: progress.add("kalshi events"),
                MARKETS.name: progress.add("kalshi markets"),
            }

            async def listing(
                table: db.Table, path: str, params: list[tuple[str, str | int]]
            ) -> bool:
                to_row = event_row if table is EVENTS else market_row
                keys = ("event_ticker",) if table is EVENTS else ("ticker", "event_ticker")
                key = "events" if table is EVENTS else "markets"
                async with gate:
                    pages = cursor_pages(
                        client,
                        path,
                        params,
                        items_key=key,
                        cursor_param="cursor",
                        cursor_key="cursor",
                    )
                    return await run_listing(
                        writer, progress, tasks[table.name], pages, table, key[:-1], to_row, keys
                    )

            jobs = []
            for sc in scopes:
                jobs.append(listing(EVENTS, "/events", [("limit", EVENTS_PAGE), *flt, *sc]))
                jobs.append(
                    listing(
                        MARKETS,
                        "/markets",
                        [("limit", MARKETS_PAGE), ("mve_filter", "exclude"), *flt, *sc],
                    )
                )
            done = await gather_or_cancel(*jobs)
            for t in tasks.values():
                progress.done(t)
            events_ok, markets_ok = all(done[0::2]), all(done[1::2])
            if status is None and events_ok:
                if scope is None:
                    await writer.delist(EVENTS)
                else:
                    await writer.delist(
                        EVENTS, "t.series_ticker IN (SELECT unnest($2::text[]))", sorted(scope)
                    )
            if status is None and markets_ok:
                if scope is None:
                    await writer.delist(MARKETS)
                else:
                    await writer.delist(
                        MARKETS,
                        "t.event_ticker IN (SELECT event_ticker FROM events"
                        " WHERE series_ticker IN (SELECT unnest($2::text[])))",
                        sorted(scope),
                    )
        await writer.flush()
        result.requests, result.retries = client.requests, client.retries
        result.throttled = client.throttled
    result.seconds = timer.elapsed()
    return result
