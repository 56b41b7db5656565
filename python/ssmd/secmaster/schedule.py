"""Every secmaster sync on its interval (``ssmd secmaster schedule``).

One loop per entry: Kalshi once per category (the categories of ``GET
/series`` when none are given), Kraken and Polymarket. Each loop waits a
random part of ``jitter * interval`` before its first run, so the entries
do not all start at once, then runs, logs a one-line summary and sleeps
``interval`` ± jitter. A loop never overlaps itself, and the sync's
advisory lock (``ssmd.sync:<name>``) keeps two processes (or a CronJob and
this scheduler) from running the same sync at the same time: the second
one is skipped and logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ssmd.errors import ConfigError, ConnectorError, SsmdError
from ssmd.secmaster.config import SYNCS, SecmasterSettings
from ssmd.secmaster.http import VenueClient
from ssmd.secmaster.sync import Job, SyncResult, run_job

__all__ = [
    "Entry",
    "default_entries",
    "kalshi_categories",
    "parse_interval",
    "run_schedule",
    "summary_line",
]

log = logging.getLogger("ssmd.secmaster")

DEFAULT_INTERVAL = 6 * 3600.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``6h``, ``1d`` → seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(f"bad interval {text!r} (e.g. 90s, 30m, 6h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One scheduled sync."""

    job: Job
    interval: float = DEFAULT_INTERVAL


def summary_line(r: SyncResult) -> str:
    parts = [
        f"{t.table} fetched {t.fetched} +{t.inserted} ~{t.updated} ={t.unchanged}"
        f" inactive {t.delisted} skipped {t.skipped}"
        for t in r.tables.values()
    ]
    return f"sync {r.name} done in {r.seconds:.1f}s: " + ("; ".join(parts) or "nothing synced")


async def kalshi_categories(settings: SecmasterSettings) -> list[str]:
    """The categories of every Kalshi series (one ``GET /series``)."""
    async with VenueClient(settings.api("kalshi")) as client:
        body = await client.get_json(
            "/series",
            check=lambda b: (
                None
                if isinstance(b, dict) and isinstance(b.get("series"), list)
                else "expected {'series': [...]}"
            ),
        )
    cats = {s.get("category") for s in body["series"] if isinstance(s, dict)}
    return sorted(c for c in cats if isinstance(c, str) and c)


async def _loop(settings: SecmasterSettings, entry: Entry, jitter: float, runs: int | None) -> None:
    name = entry.job.name
    await asyncio.sleep(random.uniform(0, jitter * entry.interval))
    done = 0
    while runs is None or done < runs:
        log.info("sync %s started", name)
        try:
            result = await run_job(settings, entry.job)
        except SsmdError as exc:  # unreachable venue or database: try again next time
            log.warning("sync %s failed: %s", name, exc)
        except Exception:  # a bug must not stop the other syncs: log it, go on
            log.exception("sync %s crashed", name)
        else:
            if result.tables:
                log.info("%s", summary_line(result))
            for err in result.errors:
                log.warning("sync %s: %s", name, err)
        done += 1
        if runs is not None and done >= runs:
            break
        wait = entry.interval * (1 + random.uniform(-jitter, jitter))
        log.info("sync %s next in %.1fs", name, wait)
        await asyncio.sleep(wait)


async def run_schedule(
    settings: SecmasterSettings,
    entries: Sequence[Entry],
    *,
    jitter: float = 0.1,
    runs: int | None = None,
) -> None:
    """Run every entry on its interval until cancelled (or ``runs`` times each)."""
    if not 0 <= jitter < 1:
        raise ConfigError(f"jitter must be in [0, 1), got {jitter}")
    if not entries:
        raise ConfigError("nothing to schedule")
    log.info(
        "schedule: %s",
        ", ".join(f"{e.job.name} every {e.interval:g}s" for e in entries),
    )
    await asyncio.gather(*(_loop(settings, e, jitter, runs) for e in entries))


async def default_entries(
    settings: SecmasterSettings,
    *,
    interval: float,
    categories: Sequence[str] = (),
    per_category: bool = True,
    venues: Sequence[str] = SYNCS,
) -> list[Entry]:
    """Kalshi per category (given, or discovered), then Kraken and Polymarket."""
    entries: list[Entry] = []
    if "kalshi" in venues:
        cats = list(categories)
        if not cats and per_category:
            try:
                cats = await kalshi_categories(settings)
            except ConnectorError as exc:
                log.warning("kalshi categories unknown (%s): one sync for all of Kalshi", exc)
        if cats:
            entries += [Entry(Job("kalshi", (c,)), interval) for c in cats]
        else:
            entries.append(Entry(Job("kalshi"), interval))
    entries += [Entry(Job(v), interval) for v in venues if v != "kalshi"]
    return entries
