"""Kraken: spot ``/public/AssetPairs`` and Futures ``/instruments`` into ``pairs``.

Spot rows are keyed by the AssetPairs key (``XXBTZUSD``) with ``symbol``
the WebSocket v2 name (``BTC/USD``: ``wsname`` with XBT→BTC, XDG→DOGE).
Futures rows are the perpetuals (instruments without ``lastTradingTime``),
keyed and named by their product id (``PF_XBTUSD``); dated futures are not
stored. ``/tickers`` supplies the ``suspended`` flag; when it fails the
sync goes on without it. Kraken reports errors with HTTP 200 and a
non-empty ``error`` (spot) or ``"result":"error"`` (futures): such pages are
retried like a 5xx.
"""

from __future__ import annotations

from typing import Any

from ssmd.errors import ConnectorError
from ssmd.secmaster import db
from ssmd.secmaster.config import VenueApi
from ssmd.secmaster.http import VenueClient
from ssmd.secmaster.symbols import kraken_v2_symbol
from ssmd.secmaster.sync.base import (
    RECORD_ERRORS,
    BadRecord,
    NullProgress,
    Progress,
    SyncResult,
    Timer,
    Writer,
    failed,
    gather_or_cancel,
    log,
    opt_bool,
    opt_dec,
    opt_int,
    opt_str,
    opt_ts,
    raw_json,
    reason,
    req_str,
)

__all__ = ["PAIRS", "futures_check", "sync_kraken"]

PAIRS = db.Table(
    "pairs",
    "pair",
    (
        "pair",
        "market_type",
        "symbol",
        "altname",
        "wsname",
        "base",
        "quote",
        "status",
        "tick_size",
        "price_precision",
        "qty_precision",
        "ordermin",
        "costmin",
        "contract_size",
        "opening_date",
        "raw",
    ),
)


def spot_row(key: str, rec: dict[str, Any]) -> tuple[Any, ...]:
    wsname = opt_str(rec, "wsname")
    altname = opt_str(rec, "altname")
    symbol = kraken_v2_symbol(wsname) if wsname else (altname or key)
    base, _, quote = symbol.partition("/") if "/" in symbol else (None, "", None)
    return (
        key,
        "spot",
        symbol,
        altname,
        wsname,
        base,
        quote,
        opt_str(rec, "status") or "online",
        opt_dec(rec, "tick_size"),
        opt_int(rec, "pair_decimals"),
        opt_int(rec, "lot_decimals"),
        opt_dec(rec, "ordermin"),
        opt_dec(rec, "costmin"),
        None,
        None,
        raw_json(rec),
    )


def _futures_status(rec: dict[str, Any], suspended: bool) -> str:
    if opt_bool(rec, "isExpired"):
        return "expired"
    if suspended:
        return "suspended"
    if opt_bool(rec, "tradeable") is False:
        return "offline"
    if opt_bool(rec, "postOnly"):
        return "post_only"
    return "online"


def perpetual_row(rec: dict[str, Any], suspended: set[str]) -> tuple[Any, ...]:
    symbol = req_str(rec, "symbol").upper()
    return (
        symbol,
        "perpetual",
        symbol,
        None,
        None,
        opt_str(rec, "base"),
        opt_str(rec, "quote"),
        _futures_status(rec, symbol in suspended),
        opt_dec(rec, "tickSize"),
        None,
        opt_int(rec, "contractValueTradePrecision"),
        None,
        None,
        opt_dec(rec, "contractSize"),
        opt_ts(rec, "openingDate"),
        raw_json(rec),
    )


def _spot_check(body: Any) -> str | None:
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    errors = body.get("error")
    if errors:
        return f"Kraken error {errors!r:.120}"
    if not isinstance(body.get("result"), dict):
        return "expected {'error': [], 'result': {...}}"
    return None


def futures_check(key: str) -> Any:
    """The ``check`` of a Kraken Futures answer whose items are the list under ``key``."""

    def check(body: Any) -> str | None:
        if not isinstance(body, dict):
            return f"expected a JSON object, got {type(body).__name__}"
        if body.get("result") != "success":
            detail = body.get("error") or body.get("errors") or body.get("result")
            return f"Kraken Futures error {detail!r:.120}"
        if not isinstance(body.get(key), list):
            return f"expected {{'result': 'success', {key!r}: [...]}}"
        return None

    return check


async def _spot(client: VenueClient, writer: Writer, progress: Progress) -> None:
    task = progress.add("kraken spot pairs")
    try:
        body = await client.get_json("/public/AssetPairs", check=_spot_check)
    except ConnectorError as exc:
        progress.done(task)
        failed(writer.result, "spot pairs", exc)
        return
    items = list(body["result"].items())
    progress.advance(task, len(items))
    progress.done(task)

    rows = []
    stats = writer.result.table("pairs")
    for key, rec in items:
        stats.fetched += 1
        try:
            if not isinstance(rec, dict):
                raise BadRecord(f"expected an object, got {type(rec).__name__}")
            rows.append(spot_row(key, rec))
        except RECORD_ERRORS as exc:
            writer.skip("pairs", "spot pair", str(key), reason(exc))
    await writer.add(PAIRS, rows)
    await writer.delist(PAIRS, "t.market_type = 'spot'")


async def _suspended(client: VenueClient) -> set[str]:
    try:
        body = await client.get_json("/tickers", check=futures_check("tickers"))
    except ConnectorError as exc:
        log.warning("kraken futures tickers unavailable, suspension not known: %s", exc)
        return set()
    return {
        t["symbol"].upper()
        for t in body["tickers"]
        if isinstance(t, dict) and isinstance(t.get("symbol"), str) and t.get("suspended") is True
    }


async def _futures(client: VenueClient, writer: Writer, progress: Progress) -> None:
    task = progress.add("kraken futures instruments")
    try:
        body, suspended = await gather_or_cancel(
            client.get_json("/instruments", check=futures_check("instruments")),
            _suspended(client),
        )
    except ConnectorError as exc:
        progress.done(task)
        failed(writer.result, "futures instruments", exc)
        return
    items = body["instruments"]
    progress.advance(task, len(items))
    progress.done(task)
    perpetual = [rec for rec in items if not (isinstance(rec, dict) and rec.get("lastTradingTime"))]
    rows = writer.parse(
        "pairs", "futures instrument", perpetual, lambda r: perpetual_row(r, suspended), ("symbol",)
    )
    writer.result.table("pairs").fetched += len(items) - len(perpetual)
    await writer.add(PAIRS, rows)
    await writer.delist(PAIRS, "t.market_type = 'perpetual'")


async def sync_kraken(
    conn: Any,
    spot_api: VenueApi,
    futures_api: VenueApi,
    *,
    progress: Progress | None = None,
    flush_rows: int = 5000,
) -> SyncResult:
    """Sync Kraken spot pairs and Futures perpetuals into ``pairs``."""
    progress = progress or NullProgress()
    timer = Timer()
    result = SyncResult("kraken")
    writer = Writer(conn, result, flush_rows)
    async with VenueClient(spot_api) as spot, VenueClient(futures_api) as futures:
        await gather_or_cancel(_spot(spot, writer, progress), _futures(futures, writer, progress))
        await writer.flush()
        result.requests = spot.requests + futures.requests
        result.retries = spot.retries + futures.retries
        result.throttled = spot.throttled + futures.throttled
    result.seconds = timer.elapsed()
    return result
