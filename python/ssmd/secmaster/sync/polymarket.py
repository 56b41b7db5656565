"""Polymarket: Gamma ``/markets/keyset`` into ``polymarket_conditions`` and ``polymarket_tokens``.

The listing asks for open markets (``closed=false``, 100 per page) and
follows ``next_cursor`` as ``after_cursor`` until a page has none. A
condition stored as open that the listing no longer returns is asked for
by id (``condition_ids=``, up to 100 per request): if Gamma still has it,
its new state (closed, resolved) is written; if not, it is marked delisted.
Tokens come from ``clobTokenIds`` (positionally aligned with ``outcomes``;
both are JSON arrays encoded as strings, or plain arrays).
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson

from ssmd.errors import ConnectorError
from ssmd.secmaster import db
from ssmd.secmaster.config import VenueApi
from ssmd.secmaster.http import VenueClient, cursor_pages
from ssmd.secmaster.sync.base import (
    RECORD_ERRORS,
    BadRecord,
    NullProgress,
    Progress,
    SyncResult,
    Timer,
    Volatile,
    Writer,
    failed,
    log,
    opt_bool,
    opt_dec,
    opt_str,
    opt_ts,
    reason,
    record_id,
    req_str,
)

__all__ = ["CONDITIONS", "TOKENS", "sync_polymarket"]

PAGE = 100
BY_ID = 100  # condition_ids per request

CONDITIONS = db.Table(
    "polymarket_conditions",
    "condition_id",
    (
        "condition_id",
        "gamma_market_id",
        "question_id",
        "question",
        "slug",
        "category",
        "event_id",
        "event_slug",
        "outcomes",
        "neg_risk",
        "active",
        "closed",
        "archived",
        "accepting_orders",
        "enable_order_book",
        "start_date",
        "end_date",
        "tick_size",
        "min_order_size",
        "status",
        "raw",
    ),
)
TOKENS = db.Table(
    "polymarket_tokens",
    "token_id",
    ("token_id", "condition_id", "outcome", "outcome_index", "status", "raw"),
)

# Prices, volume, liquidity and other per-trade fields left out of ``raw``.
_VOLATILE = Volatile(
    r"^(outcomePrices|volume|liquidity|bestBid|bestAsk|lastTradePrice|spread|competitive"
    r"|one(Hour|Day|Week|Month|Year)PriceChange|updatedAt|openInterest)"
)
#: event tags preferred as the category, in this order (as the original ssmd)
_CATEGORIES = (
    "Crypto",
    "Sports",
    "Politics",
    "Science & Tech",
    "Finance",
    "Business",
    "Pop Culture",
    "Entertainment",
)


def _trim(rec: dict[str, Any]) -> dict[str, Any]:
    """The market without its volatile keys, nor those of its nested events."""
    out = _VOLATILE.strip(rec)
    events = out.get("events")
    if isinstance(events, list):
        out = {**out, "events": [_VOLATILE.strip(e) if isinstance(e, dict) else e for e in events]}
    return out


def _str_list(rec: dict[str, Any], key: str) -> list[str]:
    """A JSON array of strings that Gamma may send encoded as a string."""
    value = rec.get(key)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRecord(f"{key}: not a JSON array: {value[:40]!r}") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRecord(f"{key}: expected an array of strings")
    return value


def _labels(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        return []
    return [t["label"] for t in tags if isinstance(t, dict) and isinstance(t.get("label"), str)]


def _category(rec: dict[str, Any], event: dict[str, Any] | None) -> str | None:
    cat = rec.get("category")
    if isinstance(cat, str) and cat:
        return cat
    labels = _labels(rec.get("tags")) or _labels((event or {}).get("tags"))
    for preferred in _CATEGORIES:
        if preferred in labels:
            return preferred
    if labels:
        return labels[0]
    ecat = (event or {}).get("category")
    return ecat if isinstance(ecat, str) and ecat else None


def _status(rec: dict[str, Any]) -> str:
    if opt_bool(rec, "closed"):
        return "settled" if rec.get("umaResolutionStatus") == "resolved" else "closed"
    if opt_bool(rec, "active") is False:
        return "inactive"
    if opt_bool(rec, "acceptingOrders") is False:
        return "suspended"
    return "active"


def _id(rec: dict[str, Any], key: str) -> str | None:
    value = rec.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRecord(f"{key}: expected a string id, got {type(value).__name__}")
    return str(value)


def market_rows(rec: dict[str, Any]) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """(condition row, token rows) of one Gamma market."""
    condition_id = req_str(rec, "conditionId")
    events = rec.get("events")
    event = (
        events[0] if isinstance(events, list) and events and isinstance(events[0], dict) else None
    )
    outcomes = _str_list(rec, "outcomes")
    tokens = _str_list(rec, "clobTokenIds")
    if tokens and outcomes and len(tokens) != len(outcomes):
        raise BadRecord(f"{len(tokens)} clobTokenIds for {len(outcomes)} outcomes")
    status = _status(rec)
    condition = (
        condition_id,
        _id(rec, "id"),
        opt_str(rec, "questionID"),
        opt_str(rec, "question"),
        opt_str(rec, "slug"),
        _category(rec, event),
        _id(event, "id") if event else None,
        opt_str(event, "slug") if event else None,
        outcomes or None,
        opt_bool(rec, "negRisk"),
        opt_bool(rec, "active"),
        opt_bool(rec, "closed"),
        opt_bool(rec, "archived"),
        opt_bool(rec, "acceptingOrders"),
        opt_bool(rec, "enableOrderBook"),
        opt_ts(rec, "startDate"),
        opt_ts(rec, "endDate"),
        opt_dec(rec, "orderPriceMinTickSize"),
        opt_dec(rec, "orderMinSize"),
        status,
        orjson.dumps(_trim(rec)).decode(),
    )
    token_rows = []
    for i, token_id in enumerate(tokens):
        outcome = outcomes[i] if i < len(outcomes) else None
        raw = {
            "token_id": token_id,
            "condition_id": condition_id,
            "outcome": outcome,
            "outcome_index": i,
        }
        token_rows.append((token_id, condition_id, outcome, i, status, orjson.dumps(raw).decode()))
    return condition, token_rows


class _Sync:
    def __init__(self, client: VenueClient, writer: Writer, progress: Progress) -> None:
        self.client = client
        self.writer = writer
        self.progress = progress
        self.returned: set[str] = set()  # condition ids Gamma returned (listing or by id)

    async def write(self, items: list[Any]) -> None:
        conditions, tokens = [], []
        stats = self.writer.result.table(CONDITIONS.name)
        for rec in items:
            stats.fetched += 1
            try:
                if not isinstance(rec, dict):
                    raise BadRecord(f"expected an object, got {type(rec).__name__}")
                cond, toks = market_rows(rec)
            except RECORD_ERRORS as exc:
                rid = record_id(rec, "conditionId", "id", "slug")
                self.writer.skip(CONDITIONS.name, "market", rid, reason(exc))
                continue
            self.returned.add(cond[0])
            conditions.append(cond)
            tokens.extend(toks)
        self.writer.result.table(TOKENS.name).fetched += len(tokens)
        await self.writer.add(CONDITIONS, conditions)
        await self.writer.add(TOKENS, tokens)

    async def listing(self) -> bool:
        task = self.progress.add("polymarket markets")
        pages = cursor_pages(
            self.client,
            "/markets/keyset",
            [("limit", PAGE), ("closed", "false")],
            items_key="markets",
            cursor_param="after_cursor",
            cursor_key="next_cursor",
        )
        try:
            async with contextlib.aclosing(pages):
                async for items in pages:
                    await self.write(items)
                    self.progress.advance(task, len(items))
        except ConnectorError as exc:
            failed(self.writer.result, "markets listing", exc)
            return False
        finally:
            self.progress.done(task)
        return True

    async def vanished(self) -> bool:
        """Ask Gamma by id for the open conditions the listing did not return."""
        await self.writer.flush()
        rows = await self.writer.conn.fetch(
            "SELECT condition_id FROM polymarket_conditions"
            " WHERE delisted_at IS NULL AND status NOT IN ('closed', 'settled')"
        )
        gone = sorted({r["condition_id"] for r in rows} - self.returned)
        if not gone:
            return True
        log.info("polymarket: %d open conditions not listed any more, asking by id", len(gone))
        try:
            for i in range(0, len(gone), BY_ID):
                params: list[tuple[str, str | int]] = [("limit", BY_ID)]
                params += [("condition_ids", c) for c in gone[i : i + BY_ID]]
                pages = cursor_pages(
                    self.client,
                    "/markets/keyset",
                    params,
                    items_key="markets",
                    cursor_param="after_cursor",
                    cursor_key="next_cursor",
                )
                async with contextlib.aclosing(pages):
                    async for items in pages:
                        await self.write(items)
        except ConnectorError as exc:
            failed(self.writer.result, "condition lookup", exc)
            return False
        return True


async def sync_polymarket(
    conn: Any, api: VenueApi, *, progress: Progress | None = None, flush_rows: int = 5000
) -> SyncResult:
    """Sync Polymarket conditions and tokens from Gamma; return the summary."""
    progress = progress or NullProgress()
    timer = Timer()
    result = SyncResult("polymarket")
    writer = Writer(conn, result, flush_rows)
    async with VenueClient(api) as client:
        sync = _Sync(client, writer, progress)
        if await sync.listing() and await sync.vanished():
            await writer.delist(CONDITIONS, "t.status NOT IN ('closed', 'settled')")
            await writer.delist(
                TOKENS,
                "t.condition_id IN (SELECT unnest($2::text[])) OR t.condition_id IN"
                " (SELECT condition_id FROM polymarket_conditions WHERE delisted_at IS NOT NULL)",
                sorted(sync.returned),
            )
        await writer.flush()
        result.requests, result.retries = client.requests, client.retries
        result.throttled = client.throttled
    result.seconds = timer.elapsed()
    return result
