"""A venue's own trade history over REST, for ``ssmd dq trades --rest-url``.

* Kalshi: ``GET {rest_url}/markets/trades?ticker=…&min_ts=…&max_ts=…``, paged
  by ``cursor``; the trade id is Kalshi's ``trade_id``.
* Kraken spot: ``GET {rest_url}/public/Trades?pair=…&since=…``, oldest first,
  each trade ``[price, volume, time, side, ordertype, misc, trade_id]``, paged
  by passing the answer's ``last`` back as ``since``; the pair's REST name comes
  from ``GET {rest_url}/public/AssetPairs`` (the archive names it by its
  WebSocket v2 symbol, ``BTC/USD``). ``trade_id`` is the WebSocket v2 one.
* Kraken Futures: ``GET {rest_url}/history?symbol=…&lastTime=…``, the 100
  trades before ``lastTime``, newest first, over the last 7 days only; the
  trade id compared is ``uid``, the one the ``trade`` feed carries.

Requests go through the secmaster's HTTP client
(:class:`ssmd.secmaster.http.VenueClient`): spaced to a rate, retried on 429,
5xx, timeouts and pages that are not JSON with the shared full-jitter
backoff, ``Retry-After`` honoured; what still fails is one
:class:`~ssmd.errors.ConnectorError` line, never a traceback. At most
:data:`MAX_PAGES` pages are read per day.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from ssmd.errors import ConfigError, ConnectorError
from ssmd.secmaster.config import VenueApi
from ssmd.secmaster.http import VenueClient, cursor_pages
from ssmd.secmaster.symbols import kraken_root, kraken_v2_symbol
from ssmd.secmaster.sync.kraken import futures_check
from ssmd.types import Venue

__all__ = ["MAX_PAGES", "rest_trades"]

log = logging.getLogger("ssmd.dq")

MAX_PAGES = 1000
PATH = "markets/trades"
#: requests per second when none is given: Kraken spot's public limit is about one a second
RATES = {Venue.KALSHI: 10.0, Venue.KRAKEN: 1.0, Venue.KRAKEN_FUTURES: 5.0}
#: Kraken spot ``public/Trades`` page size (its maximum)
KRAKEN_COUNT = 1000
#: Kraken Futures ``history``: trades per page
FUTURES_PAGE = 100
#: Kraken Futures keeps its public trade history this long
FUTURES_DAYS = 7
_DAY = 86_400

Fetch = Callable[[VenueClient, str, int], Awaitable[list[dict[str, Any]]]]


def rest_trades(
    venue: str | Venue,
    rest_url: str,
    instrument: str,
    date: dt.date,
    *,
    attempts: int = 5,
    backoff: float = 0.5,
    rate: float | None = None,
) -> list[dict[str, Any]]:
    """Trades of ``instrument`` on ``date`` from the venue's REST API (see the module
    docstring), each with ``trade_id`` (the id the archive's trades carry), ``ts`` (ms),
    ``price`` and ``size``.

    ``attempts`` per page, the first ``backoff`` delay (s) and the request
    ``rate`` (per second; the venue's own when None) are the secmaster client's.
    """
    v = Venue.parse(venue)
    fetch: dict[Venue, Fetch] = {
        Venue.KALSHI: _kalshi_trades,
        Venue.KRAKEN: _kraken_trades,
        Venue.KRAKEN_FUTURES: _futures_trades,
    }
    if v not in fetch:
        raise ConfigError(
            "--rest-url: comparing with the REST trade history is done for kalshi, kraken and"
            f" kraken-futures, not {v.value}"
        )
    start = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc).timestamp())
    if v is Venue.KRAKEN_FUTURES and start + _DAY < time.time() - FUTURES_DAYS * _DAY:
        raise ConfigError(
            f"--rest-url: kraken-futures lists its public trades of the last {FUTURES_DAYS} days"
            f" only, not of {date.isoformat()}"
        )
    base = kraken_root(rest_url) if v is Venue.KRAKEN else rest_url.strip().rstrip("/")
    api = VenueApi(
        venue=v.value,
        base_url=base,
        rate=RATES[v] if rate is None else rate,
        concurrency=1,
        attempts=attempts,
        backoff=backoff,
    )

    async def run() -> list[dict[str, Any]]:
        async with VenueClient(api) as client:
            return await fetch[v](client, instrument, start)

    return asyncio.run(run())


async def _kalshi_trades(client: VenueClient, instrument: str, start: int) -> list[dict[str, Any]]:
    params: list[tuple[str, str | int]] = [
        ("ticker", instrument),
        ("min_ts", start),
        ("max_ts", start + _DAY - 1),
        ("limit", 1000),
    ]
    out: list[dict[str, Any]] = []
    pages = cursor_pages(
        client,
        PATH,
        params,
        items_key="trades",
        cursor_param="cursor",
        cursor_key="cursor",
        max_pages=MAX_PAGES,
    )
    async with contextlib.aclosing(pages):
        async for page in pages:
            for trade in page:
                if not isinstance(trade, dict) or trade.get("trade_id") is None:
                    _bad(client, PATH, "a trade without a trade_id", trade)
                out.append(trade)
    return out


def _bad(client: VenueClient, path: str, what: str, item: object) -> NoReturn:
    api = client.api
    raise ConnectorError(
        f"{api.venue} GET /{path}: {what} ({str(item)[:80]!r}; base URL {api.base_url})"
    )


def _kraken_check(body: Any) -> str | None:
    """A reason to ask again (throttled, or not Kraken's shape), else None (errors that
    asking again will not fix are raised by the caller)."""
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    errors = body.get("error") or []
    if any("Rate limit" in str(e) or "Too many requests" in str(e) for e in errors):
        return f"Kraken error {errors!r:.120}"
    if not errors and not isinstance(body.get("result"), dict):
        return "expected {'error': [], 'result': {...}}"
    return None


async def _kraken_get(client: VenueClient, path: str, params: list[tuple[str, str | int]]) -> Any:
    body = await client.get_json(path, params, check=_kraken_check)
    if body.get("error"):
        raise ConnectorError(
            f"kraken GET /{path}: {', '.join(map(str, body['error']))[:120]}"
            f" (base URL {client.api.base_url})"
        )
    return body["result"]


async def _kraken_pair(client: VenueClient, instrument: str) -> str:
    """The REST key of the pair the archive names ``instrument`` (its v2 symbol, or any
    of the pair's REST names)."""
    pairs = await _kraken_get(client, "public/AssetPairs", [])
    want = instrument.strip().upper()
    for key, rec in pairs.items():
        if not isinstance(rec, dict):
            continue
        wsname = str(rec.get("wsname") or "")
        names = {key, str(rec.get("altname") or ""), wsname, kraken_v2_symbol(wsname)}
        if want in {n.upper() for n in names if n}:
            return str(key)
    raise ConfigError(
        f"kraken: no pair {instrument!r} in GET /public/AssetPairs at {client.api.base_url}"
    )


async def _kraken_trades(client: VenueClient, instrument: str, start: int) -> list[dict[str, Any]]:
    pair = await _kraken_pair(client, instrument)
    end = start + _DAY
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    since: str | int = start
    path = "public/Trades"
    for _ in range(MAX_PAGES):
        result = await _kraken_get(
            client, path, [("pair", pair), ("since", since), ("count", KRAKEN_COUNT)]
        )
        rows: Any = next((v for k, v in result.items() if k != "last"), [])
        if not isinstance(rows, list):
            _bad(client, path, "the trades are not a list", rows)
        past_end = False
        for row in rows:
            if not isinstance(row, list) or len(row) < 7:
                _bad(client, path, "a trade that is not [price, volume, time, …, trade_id]", row)
            try:
                t = float(row[2])
            except (TypeError, ValueError):
                _bad(client, path, "a trade time that is not a number", row)
            if t >= end:
                past_end = True
                continue
            tid = str(row[6])
            if t < start or tid in seen:
                continue  # trades at exactly ``since`` may come again on the next page
            seen.add(tid)
            out.append({"trade_id": tid, "ts": int(t * 1000), "price": row[0], "size": row[1]})
        last = result.get("last")
        if past_end or len(rows) < KRAKEN_COUNT or last is None:
            return out
        if str(last) == str(since):
            # ``since`` is a time: a whole page at one time hides the rest of its trades
            log.warning(
                "kraken %s: %d or more trades at one time (since=%s); the history lists the"
                " first %d only, so the archive's others of that time are not compared",
                instrument,
                len(rows) + 1,
                since,
                len(rows),
            )
            since = str(int(last) + 1)  # on past it
            continue
        since = str(last)
    log.warning("kraken %s: stopped after %d pages of trades", instrument, MAX_PAGES)
    return out


def _iso_ms(ms: int) -> str:
    s, rem = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{rem:03d}Z"


def _ms(raw: object) -> int:
    when = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return round(when.timestamp() * 1000)


async def _futures_trades(client: VenueClient, instrument: str, start: int) -> list[dict[str, Any]]:
    start_ms, end_ms = start * 1000, (start + _DAY) * 1000
    last_ms = end_ms
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    path = "history"
    for _ in range(MAX_PAGES):
        body = await client.get_json(
            path,
            [("symbol", instrument), ("lastTime", _iso_ms(last_ms))],
            check=futures_check("history"),
        )
        rows = body["history"]
        if not rows:
            return out
        oldest = last_ms
        newest = 0
        new = 0
        for row in rows:
            if not isinstance(row, dict) or not row.get("uid"):
                _bad(client, path, "a trade without a uid", row)
            try:
                t = _ms(row.get("time"))
            except ValueError:
                _bad(client, path, "a trade time that is not RFC 3339", row)
            oldest = min(oldest, t)
            newest = max(newest, t)
            uid = str(row["uid"])
            if t < start_ms or t >= end_ms or uid in seen:
                continue
            seen.add(uid)
            new += 1
            out.append(
                {"trade_id": uid, "ts": t, "price": row.get("price"), "size": row.get("size")}
            )
        if oldest < start_ms:
            return out
        if not new and newest == oldest and len(rows) >= FUTURES_PAGE:
            # the history pages by time only: a whole page at one millisecond hides the
            # rest of that millisecond's trades
            log.warning(
                "kraken-futures %s: %d or more trades at %s; the history lists the first %d"
                " only, so the archive's others of that millisecond are not compared",
                instrument,
                len(rows) + 1,
                _iso_ms(oldest),
                len(rows),
            )
        if oldest >= last_ms:
            _bad(client, path, f"trades not before lastTime={_iso_ms(last_ms)}", rows[0])
        # "before lastTime" is strict: ask again from just after the oldest time so that
        # trades sharing its millisecond are not skipped; once a page brings nothing new,
        # move past it
        nxt = oldest + 1 if new else oldest
        last_ms = nxt if nxt < last_ms else oldest
    log.warning("kraken-futures %s: stopped after %d pages of trades", instrument, MAX_PAGES)
    return out
