"""Reading the secmaster: one instrument (``show``) and text search over the ``instruments`` view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ssmd.types import Venue

__all__ = ["SOURCE_TABLES", "VIEW_COLUMNS", "search", "show"]

VIEW_COLUMNS = (
    "venue",
    "instrument_id",
    "symbol",
    "title",
    "status",
    "kind",
    "category",
    "tick_size",
    "opens_at",
    "closes_at",
    "updated_at",
)
_SELECT = f"SELECT {', '.join(VIEW_COLUMNS)} FROM instruments"

#: where each venue's rows live, to fetch ``raw``: (table, key column)
SOURCE_TABLES = {
    Venue.KALSHI.value: ("markets", "ticker"),
    Venue.KRAKEN.value: ("pairs", "pair"),
    Venue.KRAKEN_FUTURES.value: ("pairs", "pair"),
    Venue.POLYMARKET.value: ("polymarket_conditions", "condition_id"),
}


def _venue_filter(venue: str | Sequence[str] | None, args: list[Any]) -> str:
    """Only ``venue`` (one name or several; none or empty: every venue)."""
    venues = [venue] if isinstance(venue, str) else list(venue or ())
    if not venues:
        return ""
    args.append(venues)
    return f" AND venue = ANY(${len(args)}::text[])"


async def show(
    conn: Any, instrument: str, venue: str | Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The instruments whose id or symbol is ``instrument`` (any case), each with its ``raw``.

    A Polymarket token id finds its condition. Kalshi rows also carry their
    event and series, Polymarket rows their tokens.
    """
    args: list[Any] = [instrument]
    where = (
        " WHERE (instrument_id = $1 OR upper(symbol) = upper($1) OR upper(instrument_id) = upper($1)"
        " OR (venue = 'polymarket' AND instrument_id = (SELECT condition_id FROM polymarket_tokens"
        " WHERE token_id = $1)))"
    )
    rows = await conn.fetch(_SELECT + where + _venue_filter(venue, args) + " ORDER BY venue", *args)
    out = []
    for row in rows:
        item = dict(row)
        table, key = SOURCE_TABLES[item["venue"]]
        raw = await conn.fetchval(
            f"SELECT raw FROM {table} WHERE {key} = $1", item["instrument_id"]
        )
        item["raw"] = orjson.loads(raw) if isinstance(raw, str) else raw
        if item["venue"] == "kalshi":
            event = await conn.fetchrow(
                "SELECT e.event_ticker, e.title, e.series_ticker, s.title AS series_title"
                " FROM markets m JOIN events e USING (event_ticker)"
                " LEFT JOIN series s ON s.ticker = e.series_ticker WHERE m.ticker = $1",
                item["instrument_id"],
            )
            item["event"] = dict(event) if event else None
        elif item["venue"] == "polymarket":
            toks = await conn.fetch(
                "SELECT token_id, outcome, outcome_index, status FROM polymarket_tokens"
                " WHERE condition_id = $1 ORDER BY outcome_index",
                item["instrument_id"],
            )
            item["tokens"] = [dict(t) for t in toks]
        out.append(item)
    return out


async def search(
    conn: Any,
    text: str,
    venue: str | Sequence[str] | None = None,
    limit: int = 50,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Instruments whose id, symbol, title or category contains ``text`` (any case)."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    args: list[Any] = [pattern]
    where = (
        " WHERE (instrument_id ILIKE $1 OR symbol ILIKE $1 OR title ILIKE $1 OR category ILIKE $1)"
    )
    where += _venue_filter(venue, args)
    if status is not None:
        args.append(status)
        where += f" AND status = ${len(args)}"
    args.append(limit)
    order = f" ORDER BY (status = 'delisted'), venue, instrument_id LIMIT ${len(args)}"
    rows = await conn.fetch(_SELECT + where + order, *args)
    return [dict(r) for r in rows]
