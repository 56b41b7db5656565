"""``ssmd dq secmaster``: the secmaster's own quality, and how it matches the archive.

Checks, each counted per venue (docs/dq.md):

* ``rows``: rows per venue and status (information);
* ``missing_fields``: listed instruments lacking a field the connectors or
  users need (Kalshi title, open and close times, tick size; Kraken spot
  WebSocket name, tick size and the precisions its book checksums need;
  Kraken Futures tick size and contract size; Polymarket question, end date,
  tick size and its CLOB tokens);
* ``past_close``: markets still open (Kalshi ``initialized``, ``active``,
  ``inactive``; Polymarket ``active``) more than an hour past their close time;
* ``not_in_secmaster``: instruments with archive lines that day (any kind
  but ``status`` and ``malformed``) and no secmaster row at all;
* ``not_in_archive``: instruments the secmaster lists as trading that day
  and that have no archive line, on the venues archived that day;
* ``sync_age``: the newest change to each venue's rows; the syncs record
  no runs of their own, and a row's ``updated_at`` moves only when its
  content changes, so this is an upper bound on the time since the last
  sync (the lifecycle consumer's status changes count too).

Archive instruments are compared as subject tokens
(:func:`ssmd.core.subject_token` of the secmaster's ids), since subjects
are what every archive line names. Each check scores 0..1 per venue and
overall; a score is the checks' weighted mean times 100.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssmd.archive import list_files
from ssmd.archive.reading import OnWarning, count_lines
from ssmd.core import subject_token
from ssmd.dq.trades import Check, score
from ssmd.types import Channel, Venue

__all__ = [
    "ACTIVE_STATUSES",
    "KNOWN_IDS",
    "OPEN_STATUSES",
    "REQUIRED_FIELDS",
    "SecmasterReport",
    "archive_instruments",
    "check_secmaster",
]

#: statuses of an instrument that trades (``not_in_archive``)
ACTIVE_STATUSES: dict[Venue, tuple[str, ...]] = {
    Venue.KALSHI: ("active",),
    Venue.KRAKEN: ("online",),
    Venue.KRAKEN_FUTURES: ("online", "post_only"),
    Venue.POLYMARKET: ("active",),
}
#: statuses of a market that has not closed yet (``past_close``); none: no close times
OPEN_STATUSES: dict[Venue, tuple[str, ...]] = {
    Venue.KALSHI: ("initialized", "active", "inactive"),
    Venue.KRAKEN: (),
    Venue.KRAKEN_FUTURES: (),
    Venue.POLYMARKET: ("active",),
}
#: how long past its close time a market may stay open before it counts
CLOSE_GRACE = dt.timedelta(hours=1)
#: default age of a venue's newest row beyond which its sync counts as stale
MAX_SYNC_AGE = dt.timedelta(days=7)
#: instruments listed per venue and check in the report (the counts are whole)
SAMPLE = 20
#: subject kinds that name no instrument of the venue's own
_NOT_INSTRUMENTS = {Channel.STATUS.value, Channel.MALFORMED.value}
_DATA_KINDS = {c.value for c in Channel} - _NOT_INSTRUMENTS

WEIGHTS = {
    "rows": 0.0,
    "missing_fields": 2.0,
    "past_close": 2.0,
    "not_in_secmaster": 3.0,
    "not_in_archive": 1.0,
    "sync_age": 2.0,
}

# Each venue's listed rows (not delisted) and the required fields they lack:
# (venue, id, missing text[]).
REQUIRED_FIELDS: dict[Venue, str] = {
    Venue.KALSHI: """
SELECT 'kalshi' AS venue, ticker AS id, array_remove(ARRAY[
         CASE WHEN COALESCE(NULLIF(title, ''), NULLIF(yes_sub_title, '')) IS NULL THEN 'title' END,
         CASE WHEN open_time IS NULL THEN 'open_time' END,
         CASE WHEN close_time IS NULL THEN 'close_time' END,
         CASE WHEN tick_size IS NULL THEN 'tick_size' END], NULL) AS missing
  FROM markets WHERE delisted_at IS NULL""",
    Venue.KRAKEN: """
SELECT 'kraken', pair, array_remove(ARRAY[
         CASE WHEN NULLIF(wsname, '') IS NULL THEN 'wsname' END,
         CASE WHEN tick_size IS NULL THEN 'tick_size' END,
         CASE WHEN price_precision IS NULL THEN 'price_precision' END,
         CASE WHEN qty_precision IS NULL THEN 'qty_precision' END], NULL)
  FROM pairs WHERE market_type = 'spot' AND delisted_at IS NULL""",
    Venue.KRAKEN_FUTURES: """
SELECT 'kraken-futures', pair, array_remove(ARRAY[
         CASE WHEN tick_size IS NULL THEN 'tick_size' END,
         CASE WHEN contract_size IS NULL THEN 'contract_size' END], NULL)
  FROM pairs WHERE market_type = 'perpetual' AND delisted_at IS NULL""",
    Venue.POLYMARKET: """
SELECT 'polymarket', c.condition_id, array_remove(ARRAY[
         CASE WHEN NULLIF(c.question, '') IS NULL THEN 'question' END,
         CASE WHEN c.end_date IS NULL THEN 'end_date' END,
         CASE WHEN c.tick_size IS NULL THEN 'tick_size' END,
         CASE WHEN NOT EXISTS (SELECT 1 FROM polymarket_tokens t
                                WHERE t.condition_id = c.condition_id) THEN 'tokens' END], NULL)
  FROM polymarket_conditions c WHERE c.delisted_at IS NULL""",
}
_MISSING_SQL = "\nUNION ALL".join(REQUIRED_FIELDS[v] for v in Venue)

_MISSING_COUNT_SQL = f"""
SELECT venue, missing, count(*) AS n FROM ({_MISSING_SQL}) x GROUP BY venue, missing
"""

_MISSING_SAMPLE_SQL = f"""
SELECT venue, id, missing FROM (
  SELECT venue, id, missing, row_number() OVER (PARTITION BY venue ORDER BY id) AS n
    FROM ({_MISSING_SQL}) x WHERE cardinality(missing) > 0) y
 WHERE n <= $1 ORDER BY venue, id
"""

_ROWS_SQL = """
SELECT venue, status, count(*) AS n, max(updated_at) AS newest FROM instruments
 GROUP BY venue, status ORDER BY venue, status
"""

_PAST_CLOSE_SQL = """
WITH open_rows AS (
  SELECT i.venue, i.instrument_id, i.status, i.closes_at FROM instruments i
    JOIN unnest($1::text[], $2::text[]) AS s(venue, status)
      ON s.venue = i.venue AND s.status = i.status
   WHERE i.closes_at IS NOT NULL),
late AS (
  SELECT *, row_number() OVER (PARTITION BY venue ORDER BY closes_at, instrument_id) AS n
    FROM open_rows WHERE closes_at < $3)
SELECT o.venue, count(*) AS total, count(l.instrument_id) AS bad,
       jsonb_agg(jsonb_build_object('id', l.instrument_id, 'status', l.status,
                                    'closes_at', l.closes_at) ORDER BY l.n)
         FILTER (WHERE l.n <= $4) AS sample
  FROM open_rows o LEFT JOIN late l USING (venue, instrument_id)
 GROUP BY o.venue
"""

# Every id a subject of the venue may be made of: Kalshi markets and events
# (event_lifecycle lines are named after their event), Kraken pairs by key and
# WebSocket name, Polymarket conditions. (those among the tokens $1, all of them)
KNOWN_IDS: dict[Venue, tuple[str, str]] = {
    Venue.KALSHI: (
        "SELECT ticker AS id FROM markets WHERE ticker = ANY($1)"
        " UNION ALL SELECT event_ticker FROM events WHERE event_ticker = ANY($1)",
        "SELECT ticker AS id FROM markets UNION ALL SELECT event_ticker FROM events",
    ),
    Venue.KRAKEN: (
        "SELECT symbol AS id FROM pairs WHERE market_type = 'spot'"
        " AND (symbol = ANY($1) OR pair = ANY($1))",
        "SELECT symbol AS id FROM pairs WHERE market_type = 'spot'",
    ),
    Venue.KRAKEN_FUTURES: (
        "SELECT symbol AS id FROM pairs WHERE market_type = 'perpetual'"
        " AND (symbol = ANY($1) OR pair = ANY($1))",
        "SELECT symbol AS id FROM pairs WHERE market_type = 'perpetual'",
    ),
    Venue.POLYMARKET: (
        "SELECT condition_id AS id FROM polymarket_conditions WHERE condition_id = ANY($1)",
        "SELECT condition_id AS id FROM polymarket_conditions",
    ),
}

# Instruments listed as trading on a day: an active status, opened before its
# end, not closed before its start.
_ACTIVE_SQL = """
SELECT CASE WHEN venue IN ('kraken', 'kraken-futures') THEN symbol ELSE instrument_id END AS id
  FROM instruments
 WHERE venue = $1 AND status = ANY($2::text[])
   AND (opens_at IS NULL OR opens_at < $4) AND (closes_at IS NULL OR closes_at >= $3)
"""


@dataclass
class SecmasterReport:
    """The checks of one day, overall and per venue."""

    date: str
    checks: list[Check] = field(default_factory=list)
    #: venue -> check name -> Check (the venue's share of it)
    venues: dict[str, dict[str, Check]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return score(self.checks)

    def venue_score(self, venue: str) -> float:
        return score(list(self.venues.get(venue, {}).values()))

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "score": round(self.score, 2),
            "venues": {
                v: {
                    "score": round(self.venue_score(v), 2),
                    "checks": [_check_json(c) for c in checks.values()],
                }
                for v, checks in self.venues.items()
            },
            "checks": [_check_json(c) for c in self.checks],
            "stats": self.stats,
        }


def _check_json(c: Check) -> dict[str, Any]:
    return {
        "name": c.name,
        "score": c.score,
        "weight": c.weight,
        "value": c.value,
        "detail": c.detail,
    }


@dataclass
class _Tally:
    """One check's bad and total counts per venue, and examples."""

    bad: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, venue: str, bad: int, total: int, sample: Iterable[Any] = ()) -> None:
        self.bad[venue] = self.bad.get(venue, 0) + bad
        self.total[venue] = self.total.get(venue, 0) + total
        self.samples.setdefault(venue, []).extend(sample)


def _share_ok(bad: int, n: int) -> float:
    return 1.0 if n <= 0 else max(0.0, 1.0 - bad / n)


def _day_bounds(date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc)
    return start, start + dt.timedelta(days=1)


def archive_instruments(
    root: str | os.PathLike[str], date: dt.date, *, on_warning: OnWarning | None = None
) -> dict[str, Counter[str]]:
    """venue -> instrument subject token -> lines, of the venues archived on ``date``.

    Counted by the core from every readable line (damage skipped as the
    reader does); ``status`` and ``malformed`` lines name connections and
    are left out, as are kinds no venue defines (``unknown``).
    """
    base = Path(root)
    day = date.isoformat()
    out: dict[str, Counter[str]] = {}
    for venue in Venue:
        if not (base / venue.value).is_dir():
            continue
        files = list_files(base, venue.value, day, day, include_parts=True)
        if not files:
            continue
        tokens: Counter[str] = Counter()
        for subject, n in count_lines(files, on_warning=on_warning).items():
            kind, _, token = subject.rpartition(".")
            if kind.rpartition(".")[2] in _DATA_KINDS and token:
                tokens[token] += n
        out[venue.value] = tokens
    return out


async def check_secmaster(
    conn: Any,
    root: str | os.PathLike[str],
    date: dt.date,
    *,
    now: dt.datetime | None = None,
    max_sync_age: dt.timedelta = MAX_SYNC_AGE,
    on_warning: OnWarning | None = None,
) -> SecmasterReport:
    """Check the secmaster behind ``conn`` and compare it with the archive day ``date``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    report = SecmasterReport(date.isoformat())
    base = Path(root)
    archived = archive_instruments(base, date, on_warning=on_warning) if base.is_dir() else {}
    report.stats["archive"] = {
        "dir": str(base),
        "venues": {
            v: {"instruments": len(t), "lines": sum(t.values())} for v, t in archived.items()
        },
    }

    # rows per venue and status, and the newest change
    rows: dict[str, dict[str, int]] = {}
    newest: dict[str, dt.datetime] = {}
    for r in await conn.fetch(_ROWS_SQL):
        rows.setdefault(r["venue"], {})[r["status"]] = int(r["n"])
        if r["newest"] is not None and (
            r["venue"] not in newest or r["newest"] > newest[r["venue"]]
        ):
            newest[r["venue"]] = r["newest"]
    report.stats["rows"] = rows

    tallies: dict[str, _Tally] = {name: _Tally() for name in WEIGHTS if name != "rows"}

    # listed instruments lacking required fields
    fields: dict[str, Counter[str]] = {}
    for r in await conn.fetch(_MISSING_COUNT_SQL):
        n, missing = int(r["n"]), list(r["missing"])
        tallies["missing_fields"].add(r["venue"], n if missing else 0, n)
        counts = fields.setdefault(r["venue"], Counter())
        for f in missing:
            counts[f] += n
    for r in await conn.fetch(_MISSING_SAMPLE_SQL, SAMPLE):
        tallies["missing_fields"].samples.setdefault(r["venue"], []).append(
            {"id": r["id"], "missing": list(r["missing"])}
        )
    report.stats["missing_fields"] = {v: dict(sorted(c.items())) for v, c in fields.items() if c}

    # markets past their close time, still open
    pairs = [(v.value, s) for v, statuses in OPEN_STATUSES.items() for s in statuses]
    for r in await conn.fetch(
        _PAST_CLOSE_SQL,
        [v for v, _ in pairs],
        [s for _, s in pairs],
        now - CLOSE_GRACE,
        SAMPLE,
    ):
        tallies["past_close"].add(r["venue"], int(r["bad"]), int(r["total"]), _json(r["sample"]))

    # the archive against the secmaster, venue by venue
    day_start, day_end = _day_bounds(date)
    for venue, tokens in archived.items():
        unknown = await _unknown(conn, venue, set(tokens))
        tallies["not_in_secmaster"].add(
            venue,
            len(unknown),
            len(tokens),
            [{"id": t, "lines": tokens[t]} for t in sorted(unknown)[:SAMPLE]],
        )
        bad, total, sample = await _unseen(conn, venue, set(tokens), day_start, day_end)
        tallies["not_in_archive"].add(venue, bad, total, sample)

    # how long since each venue's rows last changed
    ages: dict[str, float] = {}
    for venue, t in newest.items():
        age = now - t
        ages[venue] = age.total_seconds()
        tallies["sync_age"].add(venue, int(age > max_sync_age), 1)
    report.stats["sync_age_s"] = ages
    report.stats["max_sync_age_s"] = max_sync_age.total_seconds()

    _build(report, rows, tallies, archived, ages, max_sync_age)
    return report


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value if value is not None else []


async def _unknown(conn: Any, venue: str, tokens: set[str]) -> set[str]:
    """The archive tokens of ``venue`` that no secmaster id of the venue maps to."""
    if not tokens:
        return set()
    exact, every = KNOWN_IDS[Venue(venue)]
    left = set(tokens)
    for r in await conn.fetch(exact, sorted(tokens)):
        left.discard(subject_token(r["id"]))
    if not left:
        return left
    # ids that differ from their token (BTC/USD -> BTC_USD): read the venue's ids once
    async with conn.transaction():
        async for r in conn.cursor(every, prefetch=10_000):
            if r["id"] is not None:
                left.discard(subject_token(r["id"]))
                if not left:
                    break
    return left


async def _unseen(
    conn: Any, venue: str, tokens: set[str], day_start: dt.datetime, day_end: dt.datetime
) -> tuple[int, int, list[str]]:
    """(unseen, listed, first unseen ids) of the instruments listed as trading that day."""
    bad = total = 0
    sample: list[str] = []
    async with conn.transaction():
        async for r in conn.cursor(
            _ACTIVE_SQL,
            venue,
            list(ACTIVE_STATUSES[Venue(venue)]),
            day_start,
            day_end,
            prefetch=10_000,
        ):
            total += 1
            if r["id"] is None or subject_token(r["id"]) not in tokens:
                bad += 1
                if len(sample) < SAMPLE:
                    sample.append(r["id"])
    return bad, total, sorted(sample)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _build(
    report: SecmasterReport,
    rows: dict[str, dict[str, int]],
    tallies: dict[str, _Tally],
    archived: dict[str, Counter[str]],
    ages: dict[str, float],
    max_sync_age: dt.timedelta,
) -> None:
    venues = [v.value for v in Venue if v.value in rows or v.value in archived]
    for v in venues:
        report.venues[v] = {}
    total_rows = sum(sum(s.values()) for s in rows.values())
    per_venue = "; ".join(
        f"{v} {sum(s.values()):,} ("
        + ", ".join(f"{k} {n:,}" for k, n in sorted(s.items(), key=lambda kv: -kv[1]))
        + ")"
        for v, s in rows.items()
    )
    report.checks.append(Check("rows", 1.0, 0.0, total_rows, per_venue or "no rows"))
    for v in venues:
        n = sum(rows.get(v, {}).values())
        report.venues[v]["rows"] = Check(
            "rows",
            1.0,
            0.0,
            n,
            ", ".join(f"{k} {c:,}" for k, c in sorted(rows.get(v, {}).items())) or "no rows",
        )

    describe = {
        "missing_fields": lambda bad, total: (
            f"{bad:,} of {total:,} listed instruments lack a field"
        ),
        "past_close": lambda bad, total: (
            f"{bad:,} of {total:,} open markets over {CLOSE_GRACE.total_seconds() / 3600:g} h"
            " past their close time"
        ),
        "not_in_secmaster": lambda bad, total: (
            f"{bad:,} of {total:,} archived instruments have no secmaster row"
        ),
        "not_in_archive": lambda bad, total: (
            f"{bad:,} of {total:,} instruments trading that day have no archive line"
        ),
        "sync_age": lambda bad, total: (
            f"{bad} of {total} venues unchanged for over {_ago(max_sync_age.total_seconds())}"
        ),
    }
    for name, tally in tallies.items():
        weight = WEIGHTS[name]
        for v in venues:
            if v not in tally.total:
                continue
            bad, total = tally.bad[v], tally.total[v]
            detail = describe[name](bad, total)
            if name == "sync_age":
                detail = f"newest change {_ago(ages[v])} ago" + (" (stale)" if bad else "")
            elif name == "missing_fields" and bad:
                fields = report.stats["missing_fields"].get(v, {})
                detail += ": " + ", ".join(f"{f} {n:,}" for f, n in sorted(fields.items()))
            samples = tally.samples.get(v, [])
            report.venues[v][name] = Check(
                name, _share_ok(bad, total), weight, bad, detail + _examples(samples, bad)
            )
        if not tally.total:
            why = "nothing to check"
            if name.startswith("not_in"):
                where = report.stats["archive"]["dir"]
                why = (
                    f"no archive files of {report.date} in {where}"
                    if Path(where).is_dir()
                    else f"archive directory not found: {where}"
                )
            report.checks.append(Check(name, 1.0, 0.0, 0, why))
            continue
        bad, total = sum(tally.bad.values()), sum(tally.total.values())
        report.checks.append(
            Check(name, _share_ok(bad, total), weight, bad, describe[name](bad, total))
        )
    report.stats["examples"] = {
        name: {v: s for v, s in tally.samples.items() if s and tally.bad.get(v)}
        for name, tally in tallies.items()
    }


def _examples(samples: list[Any], bad: int) -> str:
    if not bad or not samples:
        return ""
    ids = [s["id"] if isinstance(s, dict) else str(s) for s in samples[:3]]
    more = f", … ({bad - len(ids):,} more)" if bad > len(ids) else ""
    return " (" + ", ".join(ids) + more + ")"
