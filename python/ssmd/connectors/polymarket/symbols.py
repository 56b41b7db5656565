"""Polymarket tokens from Gamma REST (sheet ``polymarket.md`` section 5).

The socket wants token ids (``asset_id``, huge decimal strings, never
numbers); data subjects carry the condition id (``market``). ``--symbols``
takes token ids as they are and expands condition ids (``0x…``) to their
tokens through ``GET /markets/keyset?condition_ids=…`` (the offset endpoint
``/markets`` as a fallback); ``--all`` pages through the active, open
markets. The token → condition map lets the watchdog match data to tokens.
A secmaster source (later issue) returns the same
:class:`~ssmd.connectors.base.Resolution`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique
from ssmd.connectors.polymarket.config import PolymarketConfig
from ssmd.errors import ConfigError, SsmdError

__all__ = ["discover", "market_tokens"]

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


async def discover(
    cfg: PolymarketConfig, query: InstrumentQuery, client: httpx.AsyncClient
) -> Resolution:
    """Tokens to subscribe and the condition of each token Gamma told us about."""
    tokens: list[str] = []
    conditions: dict[str, str] = {}
    wanted = [s for s in query.symbols if s.lower().startswith("0x")]
    tokens.extend(s for s in query.symbols if not s.lower().startswith("0x"))
    if query.all:
        async for page in _pages(client, cfg, {"active": "true", "closed": "false"}):
            for m in page:
                cond, toks = market_tokens(m)
                for t in toks:
                    tokens.append(t)
                    if cond:
                        conditions[t] = cond
    found: set[str] = set()
    step = cfg.conditions_per_request
    for i in range(0, len(wanted), step):
        part = wanted[i : i + step]
        async for page in _pages(client, cfg, {"condition_ids": part}):
            for m in page:
                cond, toks = market_tokens(m)
                if cond is None or cond.lower() not in {c.lower() for c in part}:
                    continue
                found.add(cond.lower())
                for t in toks:
                    tokens.append(t)
                    conditions[t] = cond
    missing = [c for c in wanted if c.lower() not in found]
    if missing:
        raise ConfigError(f"polymarket: unknown condition id(s): {', '.join(missing[:5])}")
    return Resolution(instruments=unique(tokens), subject_ids=conditions)
