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
* Polymarket: the Data API's ``GET {rest_url}/trades?market=…&takerOnly=true&
  limit=…&offset=…``, newest first, one market (condition id) at a time, paged by
  ``offset`` up to the venue's offset limit; each trade's ``asset`` (the token),
  ``timestamp`` (unix seconds), ``price``, ``size``, ``side`` and
  ``transactionHash``. The token's condition id is the ``market`` of its frames
  in the archive. Compared by hash where the archive has one, else by (second,
  price, size, side): see :func:`ssmd.dq.trades.match_count`.

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
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from itertools import pairwise
from pathlib import Path
from typing import Any, NoReturn

import orjson

from ssmd.archive import ArchiveReader, list_files
from ssmd.errors import ConfigError, ConnectorError
from ssmd.secmaster.config import VenueApi
from ssmd.secmaster.http import HttpStatusError, VenueClient, cursor_pages
from ssmd.secmaster.symbols import kraken_root, kraken_v2_symbol
from ssmd.secmaster.sync.kraken import futures_check
from ssmd.types import Venue

__all__ = ["MAX_PAGES", "polymarket_condition", "rest_trades"]

log = logging.getLogger("ssmd.dq")

MAX_PAGES = 1000
PATH = "markets/trades"
#: requests per second when none is given: Kraken spot's public limit is about one a second
RATES = {
    Venue.KALSHI: 10.0,
    Venue.KRAKEN: 1.0,
    Venue.KRAKEN_FUTURES: 5.0,
    Venue.POLYMARKET: 5.0,
}
#: Kraken spot ``public/Trades`` page size (its maximum)
KRAKEN_COUNT = 1000
#: Kraken Futures ``history``: trades per page
FUTURES_PAGE = 100
#: Kraken Futures keeps its public trade history this long
FUTURES_DAYS = 7
#: Polymarket Data API ``/trades``: trades per page (500 is within every documented maximum)
POLYMARKET_LIMIT = 500
#: the largest ``offset`` the Data API takes (its documented range is 0..10000)
POLYMARKET_MAX_OFFSET = 10_000
_DAY = 86_400

Fetch = Callable[[VenueClient, str, int, str], Awaitable[list[dict[str, Any]]]]


def rest_trades(
    venue: str | Venue,
    rest_url: str,
    instrument: str,
    date: dt.date,
    *,
    attempts: int = 5,
    backoff: float = 0.5,
    rate: float | None = None,
    archive_dir: str | os.PathLike[str] | None = None,
    condition_id: str | None = None,
) -> list[dict[str, Any]]:
    """Trades of ``instrument`` on ``date`` from the venue's REST API (see the module
    docstring), each with ``trade_id`` (the id the archive's trades carry; on Polymarket
    the transaction hash), ``ts`` (ms; whole seconds on Polymarket), ``price`` and
    ``size`` (and ``side`` on Polymarket).

    ``attempts`` per page, the first ``backoff`` delay (s) and the request
    ``rate`` (per second; the venue's own when None) are the secmaster client's.
    Polymarket asks by condition id: ``condition_id``, or the token's in the archive
    at ``archive_dir`` (:func:`polymarket_condition`).
    """
    v = Venue.parse(venue)
    fetch: dict[Venue, Fetch] = {
        Venue.KALSHI: _kalshi_trades,
        Venue.KRAKEN: _kraken_trades,
        Venue.KRAKEN_FUTURES: _futures_trades,
        Venue.POLYMARKET: _polymarket_trades,
    }
    start = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc).timestamp())
    market = ""
    if v is Venue.POLYMARKET:
        if condition_id:
            market = condition_id.strip()
        elif archive_dir is not None:
            market = polymarket_condition(archive_dir, instrument, date)
        else:
            raise ConfigError(
                "--rest-url: polymarket asks for trades by condition id: give condition_id"
                " or the archive the token's frames are in"
            )
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
            return await fetch[v](client, instrument, start, market)

    return asyncio.run(run())


async def _kalshi_trades(
    client: VenueClient, instrument: str, start: int, _market: str = ""
) -> list[dict[str, Any]]:
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


async def _kraken_trades(
    client: VenueClient, instrument: str, start: int, _market: str = ""
) -> list[dict[str, Any]]:
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


async def _futures_trades(
    client: VenueClient, instrument: str, start: int, _market: str = ""
) -> list[dict[str, Any]]:
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


def polymarket_condition(root: str | os.PathLike[str], token: str, date: dt.date) -> str:
    """The condition id (``market``) of Polymarket ``token``, from the first of its frames
    in the archive at ``root`` on ``date`` (the normalized trades do not carry it)."""
    day = date.isoformat()
    base = Path(root)
    files = list_files(base, Venue.POLYMARKET.value, day, day, include_parts=True)
    needle = token.encode()
    for chunk in ArchiveReader(files):
        if needle not in chunk:
            continue
        for line in chunk.splitlines():
            if needle not in line:
                continue
            try:
                msg = orjson.loads(line).get("msg")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            for e in msg if isinstance(msg, list) else [msg]:
                if not isinstance(e, dict) or not isinstance(e.get("market"), str):
                    continue
                changes = e.get("price_changes")
                items = [e, *changes] if isinstance(changes, list) else [e]
                if any(isinstance(i, dict) and i.get("asset_id") == token for i in items):
                    return str(e["market"])
    raise ConfigError(
        f"--rest-url: no polymarket frame of token {token!r} in {base} on {day} to take its"
        " condition id (market) from"
    )


def _list_check(body: Any) -> str | None:
    if not isinstance(body, list):
        return f"expected a JSON array of trades, got {type(body).__name__}"
    return None


async def _polymarket_trades(
    client: VenueClient, instrument: str, start: int, market: str
) -> list[dict[str, Any]]:
    end = start + _DAY
    out: list[dict[str, Any]] = []
    #: trades of earlier pages: newer trades push older ones to later offsets, so a page
    #: may begin with trades the previous one ended with
    earlier: Counter[tuple[Any, ...]] = Counter()
    path = "trades"
    offset = 0
    for _ in range(MAX_PAGES):
        if offset > POLYMARKET_MAX_OFFSET:
            _offset_limit(instrument, market, f"takes an offset up to {POLYMARKET_MAX_OFFSET}", out)
            return out
        params: list[tuple[str, str | int]] = [
            ("market", market),
            ("takerOnly", "true"),
            ("limit", POLYMARKET_LIMIT),
            ("offset", offset),
        ]
        try:
            rows = await client.get_json(path, params, check=_list_check)
        except HttpStatusError as exc:
            if exc.status != 400 or offset == 0:
                raise
            # the venue refuses offsets past its limit with a 400
            _offset_limit(instrument, market, f"answered HTTP 400 at offset {offset}", out)
            return out
        page: Counter[tuple[Any, ...]] = Counter()
        times: list[int] = []
        for row in rows:
            if not isinstance(row, dict):
                _bad(client, path, "a trade that is not an object", row)
            raw_t = row.get("timestamp")
            if isinstance(raw_t, bool) or not isinstance(raw_t, (int, float)):
                _bad(client, path, "a trade time that is not a number", row)
            t = int(raw_t)
            times.append(t)
            if str(row.get("asset")) != instrument or not start <= t < end:
                continue
            txh = row.get("transactionHash") or None
            ident = (txh, t, str(row.get("price")), str(row.get("size")), str(row.get("side")))
            page[ident] += 1
        for ident, k in page.items():
            new = max(0, k - earlier[ident])
            earlier[ident] += new
            txh, t, price, size, side = ident
            out.extend(
                {"trade_id": txh, "ts": t * 1000, "price": price, "size": size, "side": side}
                for _ in range(new)
            )
        newest_first = all(a >= b for a, b in pairwise(times))
        if len(rows) < POLYMARKET_LIMIT or (newest_first and times and times[-1] < start):
            return out
        offset += POLYMARKET_LIMIT
    log.warning("polymarket %s: stopped after %d pages of trades", instrument, MAX_PAGES)
    return out


def _offset_limit(instrument: str, market: str, why: str, out: list[dict[str, Any]]) -> None:
    oldest = min((t["ts"] for t in out), default=None)
    since = _iso_ms(oldest) if oldest is not None else "the end of the day"
    log.warning(
        "polymarket %s: the Data API %s (market %s), so it lists no trades of the day"
        " before %s; the archive's trades before then show as not listed",
        instrument,
        why,
        market,
        since,
    )
