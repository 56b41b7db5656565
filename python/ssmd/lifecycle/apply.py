"""One lifecycle event -> one PostgreSQL transaction.

A market's status only moves forward (:data:`STATUS_RANK`); pausing and
unpausing (``active`` <-> ``inactive``) are moves of equal rank and follow
the stream's order. An event that would move a market backwards, or that
arrives after a later one of equal rank, is recorded but not applied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from ssmd.errors import ParseError

__all__ = ["STATUS_RANK", "LifecycleEvent", "apply_event", "parse_line"]

#: Kalshi market statuses, ranked: a market never moves to a lower rank
STATUS_RANK = {
    "initialized": 0,
    "unopened": 0,
    "active": 1,
    "inactive": 1,
    "closed": 2,
    "determined": 3,
    "disputed": 3,
    "amended": 3,
    "finalized": 4,
    "settled": 4,
}

#: lifecycle event type -> the status it means (others change no status)
EVENT_STATUS = {
    "created": "initialized",
    "activated": "active",
    "deactivated": "inactive",
    "determined": "determined",
    "settled": "finalized",
}


@dataclass(frozen=True)
class LifecycleEvent:
    """One ``market_lifecycle_v2`` or ``event_lifecycle`` message from the bus."""

    kind: str  # market_lifecycle_v2, event_lifecycle, …
    ticker: str  # market ticker (event ticker for event_lifecycle)
    event_type: str
    event_ts: dt.datetime | None
    order: int  # stream sequence * 1000 + line index: later events are larger
    dedupe_key: str
    body: dict[str, Any]  # the venue's message (``msg`` of the envelope)


def _ts(value: Any) -> dt.datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    return None


def parse_line(line: bytes, stream: str, seq: int, index: int) -> LifecycleEvent | None:
    """The lifecycle event of one envelope line; ``None`` for other messages.

    Raises :class:`~ssmd.errors.ParseError` for a line that should be one and
    cannot be read (it goes to the dead-letter subject).
    """
    try:
        env = orjson.loads(line)
        venue_msg = env["msg"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ParseError(f"not an envelope line: {exc}") from None
    if not isinstance(venue_msg, dict) or "ssmd" in venue_msg:
        return None  # ssmd's own status lines
    kind = venue_msg.get("type")
    msg = venue_msg.get("msg")
    if kind not in ("market_lifecycle_v2", "event_lifecycle"):
        return None
    if not isinstance(msg, dict):
        raise ParseError(f"{kind} without a msg object")
    ticker: Any
    event_type: Any
    if kind == "event_lifecycle":
        ticker, event_type = msg.get("event_ticker"), "event_lifecycle"
        when = _ts(msg.get("strike_date"))
    else:
        ticker, event_type = msg.get("market_ticker"), msg.get("event_type")
        when = (
            _ts(msg.get("settled_ts"))
            or _ts(msg.get("determination_ts"))
            or (_ts(msg.get("close_ts")) if event_type == "close_date_updated" else None)
            or (_ts(msg.get("open_ts")) if event_type == "created" else None)
        )
    if not isinstance(ticker, str) or not ticker:
        raise ParseError(f"{kind} without a ticker")
    if not isinstance(event_type, str) or not event_type:
        raise ParseError(f"{kind} of {ticker} without an event_type")
    if when is None and isinstance(env.get("rx"), int):
        when = dt.datetime.fromtimestamp(env["rx"] / 1e9, dt.timezone.utc)
    return LifecycleEvent(
        kind=kind,
        ticker=ticker,
        event_type=event_type,
        event_ts=when,
        order=seq * 1000 + index,
        dedupe_key=f"{stream}:{seq}:{index}",
        body=msg,
    )


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


async def apply_event(conn: Any, ev: LifecycleEvent) -> str:
    """Record ``ev`` and move its market forward, in one transaction.

    Returns ``duplicate`` (already recorded), ``unknown`` (no such market:
    recorded only), ``recorded`` (nothing to change, or an older event) or
    ``applied``.
    """
    async with conn.transaction():
        row_id = await conn.fetchval(
            "INSERT INTO market_lifecycle_events"
            " (dedupe_key, market_ticker, event_type, event_ts, raw, stream_seq)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT (dedupe_key) DO NOTHING"
            " RETURNING id",
            ev.dedupe_key,
            ev.ticker,
            ev.event_type,
            ev.event_ts,
            orjson.dumps(ev.body).decode(),
            ev.order,
        )
        if row_id is None:
            return "duplicate"
        if ev.kind != "market_lifecycle_v2":
            return "recorded"
        market = await conn.fetchrow(
            "SELECT status FROM markets WHERE ticker = $1 FOR UPDATE", ev.ticker
        )
        if market is None:
            return "unknown"
        sets, args = _changes(ev, market["status"])
        if not sets:
            return "recorded"
        newer = await conn.fetchval(
            "SELECT 1 FROM market_lifecycle_events WHERE market_ticker = $1 AND applied"
            " AND stream_seq > $2 AND event_type = ANY($3) LIMIT 1",
            ev.ticker,
            ev.order,
            _RELATED[ev.event_type],
        )
        if newer:
            return "recorded"  # a later event of the same kind was applied already
        params = [ev.ticker, *args]
        assigns = ", ".join(f"{col} = ${i + 2}" for i, col in enumerate(sets))
        await conn.execute(
            f"UPDATE markets SET {assigns}, updated_at = now() WHERE ticker = $1", *params
        )
        await conn.execute(
            "UPDATE market_lifecycle_events SET applied = true WHERE id = $1", row_id
        )
        return "applied"


#: the events whose later arrival makes an earlier one of these stale
_RELATED = {
    "created": ["created"],
    "activated": ["activated", "deactivated"],
    "deactivated": ["activated", "deactivated"],
    "close_date_updated": ["close_date_updated"],
    "determined": ["determined"],
    "settled": ["settled"],
    "price_level_structure_updated": ["price_level_structure_updated"],
}


def _changes(ev: LifecycleEvent, current: str) -> tuple[list[str], list[Any]]:
    """The columns ``ev`` sets on its market (none when it would move it backwards)."""
    m = ev.body
    cols: list[str] = []
    vals: list[Any] = []
    target = EVENT_STATUS.get(ev.event_type)
    if target is not None:
        if STATUS_RANK.get(target, 0) < STATUS_RANK.get(current, 0):
            return [], []  # never backwards: recorded only
        if target != current:
            cols.append("status")
            vals.append(target)
    if ev.event_type == "created":
        for col, key in (("open_time", "open_ts"), ("close_time", "close_ts")):
            if (t := _ts(m.get(key))) is not None:
                cols.append(col)
                vals.append(t)
    elif ev.event_type == "close_date_updated":
        if (t := _ts(m.get("close_ts"))) is not None:
            cols.append("close_time")
            vals.append(t)
    elif ev.event_type == "determined":
        if m.get("result") is not None:
            cols.append("result")
            vals.append(str(m["result"]))
        if (d := _decimal(m.get("settlement_value"))) is not None:
            cols.append("settlement_value_dollars")
            vals.append(d)
    elif ev.event_type == "settled":
        if (t := _ts(m.get("settled_ts"))) is not None:
            cols.append("settlement_ts")
            vals.append(t)
    elif ev.event_type == "price_level_structure_updated" and isinstance(
        m.get("price_level_structure"), str
    ):
        cols.append("price_level_structure")
        vals.append(m["price_level_structure"])
    return cols, vals
