"""Kraken spot instruments from REST AssetPairs or the secmaster (sheet ``kraken.md`` section 5).

AssetPairs gives every pair's ``wsname`` (the **v1** WebSocket name,
``XBT/USD``) and its price/lot decimals. The v2 socket wants ``BTC/USD``, so
v1 asset codes are mapped (``XBT`` → ``BTC``, ``XDG`` → ``DOGE``) by the
rule the secmaster sync uses too (:mod:`ssmd.secmaster.symbols`). Names
given by the user may be v2 symbols, v1 wsnames, REST altnames
(``XBTUSD``) or REST keys (``XXBTZUSD``). The precisions feed the core's
book checksum (``Processor.set_precision``); ``--all`` takes the pairs whose
status is ``online``.

:func:`from_secmaster` (when ``DATABASE_URL`` is set) reads the same pairs
from the secmaster's ``pairs`` table (``market_type = 'spot'``, not
delisted; ``price_precision``/``qty_precision`` are AssetPairs'
``pair_decimals``/``lot_decimals``) and chooses them with the same code,
so both give the same :class:`~ssmd.connectors.base.Resolution`.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ssmd.connectors.base import InstrumentQuery, Resolution, rest_get, unique
from ssmd.connectors.secmaster import SecmasterReader
from ssmd.errors import ConfigError, SsmdError
from ssmd.secmaster.symbols import kraken_root, kraken_v2_symbol

__all__ = [
    "choose",
    "discover",
    "from_secmaster",
    "pairs_from_rest",
    "pairs_from_rows",
]

log = logging.getLogger("ssmd.connect")


def pairs_from_rest(body: Any) -> dict[str, dict[str, Any]]:
    """``{v2 symbol: pair record}`` from an AssetPairs response (errors raise)."""
    if not isinstance(body, dict):
        raise ConfigError("kraken AssetPairs: unexpected response")
    errors = body.get("error") or []
    if errors:
        raise ConfigError(f"kraken AssetPairs: {', '.join(map(str, errors))}")
    out: dict[str, dict[str, Any]] = {}
    for key, rec in (body.get("result") or {}).items():
        if not isinstance(rec, dict) or not rec.get("wsname"):
            continue
        out[kraken_v2_symbol(rec["wsname"])] = {**rec, "key": key}
    return out


def _v2_only(query: InstrumentQuery) -> bool:
    """Whether every name is a v2 symbol that can be subscribed without a lookup."""
    return not query.all and all("/" in s for s in query.symbols)


async def discover(cfg_rest: str, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
    """Resolve ``query`` to v2 symbols and precisions through AssetPairs."""
    url = f"{kraken_root(cfg_rest)}/public/AssetPairs"
    try:
        pairs = pairs_from_rest(await rest_get(client, url, attempts=3))
    except SsmdError as exc:
        if not _v2_only(query):
            raise ConfigError(f"kraken: cannot look up pairs: {exc}") from exc
        log.warning("kraken: AssetPairs unavailable (%s); checksum precisions inferred", exc)
        return Resolution(instruments=unique(query.symbols))
    return choose(pairs, query, "AssetPairs")


def choose(pairs: dict[str, dict[str, Any]], query: InstrumentQuery, where: str) -> Resolution:
    """The symbols and precisions of ``query`` among ``pairs`` ({v2 symbol: AssetPairs record})."""
    index: dict[str, str] = {}
    for sym, rec in pairs.items():
        for name in (sym, rec.get("wsname"), rec.get("altname"), rec.get("key")):
            if isinstance(name, str):
                index.setdefault(name.upper(), sym)
    if query.all:
        chosen = [s for s, r in pairs.items() if r.get("status", "online") == "online"]
    else:
        chosen = []
        unknown: list[str] = []
        for name in query.symbols:
            found = index.get(name.upper())
            if found is not None:
                chosen.append(found)
            elif "/" in name:
                log.warning("kraken: %s is not in %s; subscribing anyway", name, where)
                chosen.append(name)  # let the venue say whether it exists
            else:
                unknown.append(name)
        if unknown:
            raise ConfigError(f"kraken: unknown pair(s) (not in {where}): {', '.join(unknown)}")
    precisions = {}
    for sym in chosen:
        rec = pairs.get(sym) or {}
        if "pair_decimals" in rec and "lot_decimals" in rec:
            precisions[sym] = (int(rec["pair_decimals"]), int(rec["lot_decimals"]))
    return Resolution(instruments=unique(chosen), precisions=precisions)


# -- the secmaster -------------------------------------------------------------

_PAIRS_SQL = """
SELECT pair, wsname, altname, status, price_precision, qty_precision
  FROM pairs
 WHERE market_type = 'spot' AND delisted_at IS NULL AND wsname IS NOT NULL
 ORDER BY pair
"""


def pairs_from_rows(rows: list[Any]) -> dict[str, dict[str, Any]]:
    """``{v2 symbol: record}`` shaped like :func:`pairs_from_rest` from ``pairs`` rows."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        rec: dict[str, Any] = {"key": r["pair"], "wsname": r["wsname"], "status": r["status"]}
        if r["altname"] is not None:
            rec["altname"] = r["altname"]
        if r["price_precision"] is not None and r["qty_precision"] is not None:
            rec["pair_decimals"] = r["price_precision"]
            rec["lot_decimals"] = r["qty_precision"]
        out[kraken_v2_symbol(r["wsname"])] = rec
    return out


async def from_secmaster(query: InstrumentQuery, source: SecmasterReader) -> Resolution:
    """:func:`discover`'s resolution from the secmaster's spot pairs."""
    pairs = pairs_from_rows(await source.fetch(_PAIRS_SQL))
    if not pairs:
        hint = "the secmaster has no Kraken spot pairs (run `ssmd kraken sync` first)"
        if not _v2_only(query):
            raise ConfigError(f"kraken: {hint}")
        log.warning("kraken: %s; checksum precisions inferred", hint)
        return Resolution(instruments=unique(query.symbols))
    return choose(pairs, query, "the secmaster")
