"""Polymarket tokens from Gamma REST (sheet ``polymarket.md`` section 5).

The socket wants token ids (``asset_id``, huge decimal strings, never
numbers); data subjects carry the condition id (``market``). ``--symbols``
takes token ids as they are and expands condition ids (``0x…``) to their
tokens through ``GET /markets/keyset?condition_ids=…`` (the offset endpoint
``/markets`` as a fallback); ``--all`` pages through the active, open
markets. The token → condition map lets the watchdog match data to tokens.

:func:`from_secmaster` (when ``DATABASE_URL`` is set) returns the same
:class:`~ssmd.connectors.base.Resolution` from the secmaster's
``polymarket_conditions`` and ``polymarket_tokens``: token ids as given,
without a query; condition ids expanded to their tokens (any status, not
delisted); ``--all`` the tokens of the conditions whose status is
``active`` or ``suspended`` (Gamma's ``active=true&closed=false``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique
from ssmd.connectors.polymarket.config import PolymarketConfig
from ssmd.connectors.secmaster import SecmasterReader
from ssmd.errors import ConfigError, SsmdError

__all__ = ["OPEN_STATUSES", "assemble", "discover", "from_secmaster", "market_tokens"]

#: (condition id, its token ids)
Tokens = tuple[str | None, list[str]]

log = logging.getLogger("ssmd.connect")


def _list(value: Any) -> list[Any]:
    """Gamma's stringified arrays (``"[\\"1\\", \\"2\\"]"``) or real ones."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
    return value if isinstance(value, list) else []


def market_tokens(market: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(condition id, token ids) of a Gamma (or CLOB) market object."""
    cond = market.get("conditionId") or market.get("condition_id") or market.get("market")
    tokens = [str(t) for t in _list(market.get("clobTokenIds"))]
    if not tokens:
        tokens = [str(t["token_id"]) for t in _list(market.get("tokens")) if isinstance(t, dict)]
    return (str(cond) if cond else None), tokens


def _markets(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    if isinstance(body, list):
        return [m for m in body if isinstance(m, dict)], None
    if isinstance(body, dict):
        items = body.get("markets") or body.get("data") or []
        cursor = body.get("next_cursor")
        return [m for m in items if isinstance(m, dict)], (str(cursor) if cursor else None)
    raise ConfigError("polymarket: unexpected markets response")


async def _pages(
    client: httpx.AsyncClient, cfg: PolymarketConfig, params: dict[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """Gamma keyset pages (``after_cursor``), or offset pages when keyset is missing."""
    root = cfg.rest_url.rstrip("/")
    cursor: str | None = None
    try:
        while True:
            p = {**params, "limit": cfg.page_size}
            if cursor:
                p["after_cursor"] = cursor
            items, cursor = _markets(await rest_get(client, f"{root}/markets/keyset", p))
            yield items
            if not cursor or cursor == "LTE=":
                return
    except SsmdError as exc:
        if cursor is not None or "HTTP 404" not in str(exc):
            raise
        log.info("polymarket: no keyset endpoint; using offset pagination")
    offset = 0
    while True:
        p = {**params, "limit": cfg.page_size, "offset": offset}
        items, _ = _markets(await rest_get(client, f"{root}/markets", p))
        yield items
        if len(items) < cfg.page_size:
            return
        offset += len(items)


def _conditions(query: InstrumentQuery) -> list[str]:
    """The condition ids (``0x…``) among the names; the rest are token ids."""
    return [s for s in query.symbols if s.lower().startswith("0x")]


def assemble(query: InstrumentQuery, listed: list[Tokens], expanded: list[Tokens]) -> Resolution:
    """Explicit tokens, then ``--all``'s (``listed``), then the expanded conditions' tokens.

    ``expanded`` are the conditions found for the condition ids of ``query``
    (any order, any case); one that was not found is a ConfigError.
    """
    wanted = _conditions(query)
    tokens = [s for s in query.symbols if not s.lower().startswith("0x")]
    conditions: dict[str, str] = {}
    for cond, toks in listed:
        for t in toks:
            tokens.append(t)
            if cond:
                conditions[t] = cond
    found: set[str] = set()
    for cond, toks in expanded:
        if cond is None:
            continue
        found.add(cond.lower())
        for t in toks:
            tokens.append(t)
            conditions[t] = cond
    missing = [c for c in wanted if c.lower() not in found]
    if missing:
        raise ConfigError(f"polymarket: unknown condition id(s): {', '.join(missing[:5])}")
    return Resolution(instruments=unique(tokens), subject_ids=conditions)


async def discover(
    cfg: PolymarketConfig, query: InstrumentQuery, client: httpx.AsyncClient
) -> Resolution:
    """Tokens to subscribe and the condition of each token Gamma told us about."""
    listed: list[Tokens] = []
    if query.all:
        async for page in _pages(client, cfg, {"active": "true", "closed": "false"}):
            listed.extend(market_tokens(m) for m in page)
    expanded: list[Tokens] = []
    wanted = _conditions(query)
    step = cfg.conditions_per_request
    for i in range(0, len(wanted), step):
        part = wanted[i : i + step]
        lowered = {c.lower() for c in part}
        async for page in _pages(client, cfg, {"condition_ids": part}):
            for m in page:
                cond, toks = market_tokens(m)
                if cond is not None and cond.lower() in lowered:
                    expanded.append((cond, toks))
    return assemble(query, listed, expanded)


# -- the secmaster -------------------------------------------------------------

#: condition statuses (secmaster sync) of Gamma's ``active=true&closed=false``
OPEN_STATUSES = ("active", "suspended")

_TOKENS_SQL = """
SELECT c.condition_id, t.token_id
  FROM polymarket_conditions c
  LEFT JOIN polymarket_tokens t ON t.condition_id = c.condition_id AND t.delisted_at IS NULL
 WHERE {where}
 ORDER BY c.condition_id, t.outcome_index
"""
_OPEN_SQL = _TOKENS_SQL.format(where="c.status = ANY($1::text[])")
_BY_ID_SQL = _TOKENS_SQL.format(
    where="lower(c.condition_id) = ANY($1::text[]) AND c.delisted_at IS NULL"
)
_ANY_SQL = "SELECT condition_id FROM polymarket_conditions LIMIT 1"


def _grouped(rows: list[Any]) -> list[Tokens]:
    out: dict[str, list[str]] = {}
    for r in rows:
        toks = out.setdefault(str(r["condition_id"]), [])
        if r["token_id"] is not None:
            toks.append(str(r["token_id"]))
    return list(out.items())


async def from_secmaster(query: InstrumentQuery, source: SecmasterReader) -> Resolution:
    """:func:`discover`'s resolution from the secmaster's conditions and tokens."""
    listed: list[Tokens] = []
    if query.all:
        listed = _grouped(await source.fetch(_OPEN_SQL, list(OPEN_STATUSES)))
        if not listed and not await source.fetch(_ANY_SQL):
            raise ConfigError(
                "polymarket: the secmaster has no conditions (run `ssmd polymarket sync` first)"
            )
    expanded: list[Tokens] = []
    wanted = _conditions(query)
    if wanted:
        expanded = _grouped(await source.fetch(_BY_ID_SQL, [c.lower() for c in wanted]))
    return assemble(query, listed, expanded)
