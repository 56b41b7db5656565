"""The venues of the secmaster tests: ``ssmd sim``'s REST endpoints, and database helpers.

Every venue's simulator serves the listings the syncs read (Kalshi
``/series``, ``/series/fee_changes``, ``/events``, ``/markets``; Kraken
``/0/public/AssetPairs``; Kraken Futures ``/instruments`` and ``/tickers``;
Polymarket Gamma ``/markets/keyset``). A test changes what a venue lists
through ``sim.venue.records`` (change, hide, add broken records, a stuck
cursor), queues raw answers with ``sim.inject("rest_response", …)`` and reads
``sim.rest_hits(prefix)``, see ``docs/sim.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssmd.secmaster.config import SecmasterSettings
from ssmd.secmaster.db import connect
from ssmd.sim import SimServer, venue_class
from ssmd.types import Venue

__all__ = ["Venues", "fetch", "make_settings", "offline", "start_venues", "versions"]


@dataclass
class Venues:
    """One simulator per venue, serving REST (no data is streamed)."""

    sims: dict[Venue, SimServer]

    @property
    def kalshi(self) -> SimServer:
        return self.sims[Venue.KALSHI]

    @property
    def kraken(self) -> SimServer:
        return self.sims[Venue.KRAKEN]

    @property
    def futures(self) -> SimServer:
        return self.sims[Venue.KRAKEN_FUTURES]

    @property
    def polymarket(self) -> SimServer:
        return self.sims[Venue.POLYMARKET]

    @property
    def urls(self) -> dict[str, str]:
        """Each venue's REST root, by CLI name (what ``--rest-url`` takes)."""
        return {v.value: s.rest_url for v, s in self.sims.items()}


async def start_venues(make_sim: Any, **instruments: Any) -> Venues:
    """Every venue's simulator; ``instruments`` sizes a universe by module id
    (``polymarket=250``)."""
    sims = {v: await make_sim(v, rate=0.0, instruments=instruments.get(v.module)) for v in Venue}
    return Venues(sims)


def offline(venue: Venue | str, instruments: Any = None) -> Any:
    """A simulated venue that is not served: its universe and REST records, for unit tests."""
    return SimServer(venue_class(venue), rate=0.0, instruments=instruments).venue


def make_settings(dsn: str | None, venues: Venues, attempts: int = 3) -> SecmasterSettings:
    """Settings pointing every venue at its simulator, unthrottled."""
    rates: dict[str, float | None] = {v: 0.0 for v in venues.urls}
    return SecmasterSettings.load(
        {}, database_url=dsn, urls=dict(venues.urls), rates=rates, attempts=attempts
    )


async def versions(dsn: str, table: str, key: str) -> dict[str, str]:
    """key -> xmin of every row: a row rewritten in any way gets a new xmin."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(f"SELECT {key} AS k, xmin::text AS x FROM {table}")
        return {r["k"]: r["x"] for r in rows}
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()
