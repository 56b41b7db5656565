"""What every venue sync shares: record fields, counters, the bulk writer, progress.

A venue module turns each venue record into one row tuple with the field
readers here (``req_str``, ``opt_ts``, ...). A record they reject (missing
field, wrong type, unparsable value) raises :class:`BadRecord`; the sync
logs it with the record's id, counts it as skipped and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

import orjson

from ssmd.errors import ConnectorError
from ssmd.secmaster import db
from ssmd.secmaster.http import VenueUnreachable

__all__ = [
    "RECORD_ERRORS",
    "BadRecord",
    "NullProgress",
    "Progress",
    "SyncResult",
    "TableStats",
    "Volatile",
    "Writer",
    "failed",
    "gather_or_cancel",
    "make_progress",
    "opt_bool",
    "opt_dec",
    "opt_int",
    "opt_str",
    "opt_ts",
    "parse_ts",
    "raw_json",
    "reason",
    "req_str",
    "run_listing",
]

log = logging.getLogger("ssmd.secmaster")
T = TypeVar("T")

#: warnings about skipped records logged per table and sync (the rest are counted)
MAX_SKIP_LOGS = 50


class BadRecord(ValueError):
    """A venue record that cannot become a row (logged with its id, then skipped)."""


#: what a record of an unexpected shape can raise while it is turned into a row
RECORD_ERRORS = (BadRecord, KeyError, TypeError, ValueError, AttributeError, IndexError)


def reason(exc: Exception) -> str:
    """The skip reason of a rejected record."""
    return (
        str(exc)
        if isinstance(exc, BadRecord)
        else f"unexpected shape ({type(exc).__name__}: {exc})"
    )


# -- field readers -------------------------------------------------------------------

_TS = re.compile(
    r"^(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d(?::\d\d)?)(?:\.(\d+))?)?\s*(Z|z|[+-]\d\d(?::?\d\d)?)?$"
)


#: Python 3.11+ ``fromisoformat`` reads RFC 3339 (``Z``, any fraction) by itself
_FAST_ISO = sys.version_info >= (3, 11)


def parse_ts(text: str) -> dt.datetime:
    """An RFC 3339 / ISO 8601 timestamp (or a bare date) as an aware datetime, UTC if no zone."""
    if _FAST_ISO:
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.timezone.utc)
    m = _TS.match(text.strip())
    if m is None:
        raise ValueError(f"not a timestamp: {text[:40]!r}")
    date, clock, frac, zone = m.groups()
    clock = clock or "00:00:00"
    if len(clock) == 5:
        clock += ":00"
    micro = (frac or "")[:6].ljust(6, "0")
    if zone in (None, "Z", "z"):
        zone = "+00:00"
    elif len(zone) == 3:
        zone += ":00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    return dt.datetime.fromisoformat(f"{date}T{clock}.{micro}{zone}")


def _type_error(key: str, want: str, value: Any) -> BadRecord:
    return BadRecord(f"{key}: expected {want}, got {type(value).__name__} {str(value)[:30]!r}")


def req_str(rec: Mapping[str, Any], key: str) -> str:
    """A required non-empty string field."""
    value = rec.get(key)
    if value is None or value == "":
        raise BadRecord(f"{key} is missing")
    if not isinstance(value, str):
        raise _type_error(key, "a string", value)
    return value


def opt_str(rec: Mapping[str, Any], key: str) -> str | None:
    value = rec.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _type_error(key, "a string", value)
    return value


def opt_ts(rec: Mapping[str, Any], key: str) -> dt.datetime | None:
    value = rec.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _type_error(key, "a timestamp string", value)
    try:
        return parse_ts(value)
    except ValueError:
        raise BadRecord(f"{key}: not a timestamp: {value[:40]!r}") from None


def opt_dec(rec: Mapping[str, Any], key: str) -> Decimal | None:
    value = rec.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _type_error(key, "a number", value)
    try:
        d = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    except InvalidOperation:
        raise BadRecord(f"{key}: not a number: {str(value)[:30]!r}") from None
    if not d.is_finite():
        raise BadRecord(f"{key}: not a finite number: {value!r}")
    return d


def opt_int(rec: Mapping[str, Any], key: str) -> int | None:
    value = rec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(key, "an integer", value)
    return value


def opt_bool(rec: Mapping[str, Any], key: str) -> bool | None:
    value = rec.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _type_error(key, "a boolean", value)
    return value


class Volatile:
    """Keys left out of ``raw``: those matching ``pattern`` (quotes, volume, ...).

    Each key is classified once and remembered, so stripping a record costs
    two set operations instead of a regex per key.
    """

    def __init__(self, pattern: str) -> None:
        self._re = re.compile(pattern)
        self._known: set[str] = set()
        self._drop: set[str] = set()

    def strip(self, rec: dict[str, Any]) -> dict[str, Any]:
        keys = rec.keys()
        new = keys - self._known
        if new:
            if len(self._known) > 10_000:  # a venue inventing keys: start over
                self._known.clear()
            self._known.update(new)
            self._drop.update(k for k in new if self._re.match(k))
        hit = keys & self._drop
        if not hit:
            return rec
        out = dict(rec)
        for k in hit:
            del out[k]
        return out


def raw_json(rec: dict[str, Any], volatile: Volatile | None = None) -> str:
    """The record as JSON text for ``raw``, without its ``volatile`` keys.

    Quote, volume and other per-trade fields are dropped so that ``raw``
    changes only when the instrument's definition does.
    """
    return orjson.dumps(volatile.strip(rec) if volatile is not None else rec).decode()


def record_id(rec: Any, *keys: str) -> str:
    """The best id of a (possibly broken) record, for log lines."""
    if isinstance(rec, Mapping):
        for key in keys:
            value = rec.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
                return str(value)[:80]
        return "<no " + "/".join(keys) + ">"
    return f"<{type(rec).__name__}: {str(rec)[:40]}>"


# -- counters --------------------------------------------------------------------------


@dataclass
class TableStats:
    """What one sync did to one table."""

    table: str
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    delisted: int = 0
    skipped: int = 0
    #: distinct valid rows handed to the database
    rows: int = 0

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated

    def as_dict(self) -> dict[str, int | str]:
        return {
            "table": self.table,
            "fetched": self.fetched,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "marked_inactive": self.delisted,
            "skipped": self.skipped,
        }


@dataclass
class SyncResult:
    """Summary of one sync (one venue, possibly several tables)."""

    name: str
    tables: dict[str, TableStats] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0
    retries: int = 0
    throttled: int = 0

    def table(self, name: str) -> TableStats:
        if name not in self.tables:
            self.tables[name] = TableStats(name)
        return self.tables[name]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "sync": self.name,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "tables": [t.as_dict() for t in self.tables.values()],
            "errors": list(self.errors),
        }


# -- progress --------------------------------------------------------------------------


class Progress(Protocol):
    """Where a sync reports records as they arrive (a terminal bar, or nothing)."""

    def add(self, description: str) -> int: ...

    def advance(self, task: int, n: int) -> None: ...

    def done(self, task: int) -> None: ...


class NullProgress:
    def add(self, description: str) -> int:
        return 0

    def advance(self, task: int, n: int) -> None:
        pass

    def done(self, task: int) -> None:
        pass


class _RichProgress:
    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def add(self, description: str) -> int:
        return int(self._bar.add_task(description, total=None))

    def advance(self, task: int, n: int) -> None:
        self._bar.advance(task, n)

    def done(self, task: int) -> None:
        self._bar.update(task, total=self._bar.tasks[task].completed)


class make_progress:
    """A rich progress display on stderr when it is a terminal, else :class:`NullProgress`."""

    def __init__(self, enabled: bool | None = None) -> None:
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if not self._enabled:
            return NullProgress()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        return _RichProgress(self._bar)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- the bulk writer -----------------------------------------------------------------


class Writer:
    """Buffers rows per table and writes them in bulk over one connection.

    Rows are deduplicated by key (last wins), remembered in ``seen`` for
    delisting, and flushed every ``flush_rows`` rows and at the end.
    """

    def __init__(self, conn: Any, result: SyncResult, flush_rows: int = 5000) -> None:
        self.conn = conn
        self.result = result
        self.flush_rows = flush_rows
        self.seen: dict[str, set[str]] = {}
        self._buffers: dict[str, dict[str, tuple[Any, ...]]] = {}
        self._tables: dict[str, db.Table] = {}
        self._lock = asyncio.Lock()
        self._skip_logs: dict[str, int] = {}

    def skip(self, table: str, what: str, rid: str, reason: str) -> None:
        """Count and log a record that could not become a row."""
        self.result.table(table).skipped += 1
        n = self._skip_logs.get(table, 0) + 1
        self._skip_logs[table] = n
        if n <= MAX_SKIP_LOGS:
            log.warning("%s %s %s skipped: %s", self.result.name, what, rid, reason)
        elif n == MAX_SKIP_LOGS + 1:
            log.warning("%s: more %s records skipped (not logged one by one)", table, what)

    def parse(
        self,
        table: str,
        what: str,
        records: Iterable[Any],
        to_row: Callable[[Any], tuple[Any, ...]],
        id_keys: tuple[str, ...],
    ) -> list[tuple[Any, ...]]:
        """Rows of the records that parse; the others are skipped and logged."""
        rows: list[tuple[Any, ...]] = []
        stats = self.result.table(table)
        for rec in records:
            stats.fetched += 1
            try:
                if not isinstance(rec, dict):
                    raise BadRecord(f"expected an object, got {type(rec).__name__}")
                rows.append(to_row(rec))
            except RECORD_ERRORS as exc:
                self.skip(table, what, record_id(rec, *id_keys), reason(exc))
        return rows

    async def add(self, table: db.Table, rows: Iterable[tuple[Any, ...]]) -> None:
        self._tables[table.name] = table
        buf = self._buffers.setdefault(table.name, {})
        seen = self.seen.setdefault(table.name, set())
        for row in rows:
            buf[row[0]] = row
            seen.add(row[0])
        if len(buf) >= self.flush_rows:
            await self.flush(table.name)

    async def flush(self, name: str | None = None) -> None:
        names = [name] if name else list(self._buffers)
        async with self._lock:
            for n in names:
                buf = self._buffers.get(n)
                if not buf:
                    continue
                self._buffers[n] = {}
                stats = self.result.table(n)
                ins, upd = await db.upsert(self.conn, self._tables[n], buf.values())
                stats.rows += len(buf)
                stats.inserted += ins
                stats.updated += upd

    async def delist(self, table: db.Table, scope: str = "TRUE", *args: Any) -> None:
        """After a complete listing: mark the table's unseen rows within ``scope``."""
        await self.flush(table.name)
        async with self._lock:
            n = await db.delist(self.conn, table, self.seen.get(table.name, ()), scope, *args)
        self.result.table(table.name).delisted += n
        if n:
            log.info("%s: %d rows no longer listed, marked delisted", table.name, n)


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


async def run_listing(
    writer: Writer,
    progress: Progress,
    task: int,
    pages: AsyncGenerator[list[Any], None],
    table: db.Table,
    what: str,
    to_row: Callable[[Any], tuple[Any, ...]],
    id_keys: tuple[str, ...],
) -> bool:
    """Write every page of one listing; False (error recorded) if it did not complete."""
    try:
        async with contextlib.aclosing(pages):
            async for items in pages:
                rows = writer.parse(table.name, what, items, to_row, id_keys)
                await writer.add(table, rows)
                progress.advance(task, len(items))
    except ConnectorError as exc:
        failed(writer.result, f"{what} listing", exc)
        return False
    return True


def failed(result: SyncResult, label: str, exc: ConnectorError) -> None:
    """Record a listing that did not complete; an unreachable venue stops the whole sync."""
    if isinstance(exc, VenueUnreachable):
        raise exc
    result.errors.append(str(exc))  # printed (CLI) or logged (scheduler) with the summary
    log.info("%s %s failed: %s", result.name, label, exc)


async def gather_or_cancel(*coros: Awaitable[T]) -> list[T]:
    """Like ``asyncio.gather``, but the first exception cancels the others."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
