"""The archive as polars DataFrames: :func:`read` and :func:`scan` (docs/data.md).

One normalized kind at a time, with the columns of the Parquet export
(:mod:`ssmd.archive.parquet`, schemas in docs/data.md): prices and sizes as
their exact decimal text. ``views=True`` adds, after each decimal, its
float64 view (``price_f64``, …), derived from the text as the frame is built
(nearest double, null when the text is not a finite number, as the core
computes them); the export stores the text only. Each venue's days
come from the Parquet export where that day has been exported
(``{parquet_dir}/{venue}/{kind}/date=YYYY-MM-DD/``), and straight from the
gzip JSONL archive through the core otherwise (the same Rust reader and
normalizer as the export, its Arrow arrays taken by polars without a copy).
Rows are in ``rx`` order. polars comes with the ``[data]`` extra and is
imported only when these functions run.

Example::

    import ssmd
    trades = ssmd.read("trade", venue="kraken", start="2024-03-01", end="2024-03-01",
                       instruments=["BTC/USD"], views=True)
    trades.group_by_dynamic("rx", every="1m").agg(pl.col("size_f64").sum())
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ssmd._core import ColumnReader, arrow_schema, list_files
from ssmd.archive.bounds import MAX_RX_NS, time_bound
from ssmd.archive.parquet import FILE_NAME, KINDS, need_data, parquet_dir
from ssmd.archive.reading import OnWarning, warn
from ssmd.errors import ConfigError
from ssmd.types import Venue

__all__ = ["TimeArg", "instant", "read", "scan", "time_range"]

#: A bound: a date (its whole day), a datetime (UTC when naive) or an ISO string of either.
TimeArg = str | dt.date | dt.datetime

PathArg = str | os.PathLike[str]

_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)


def instant(value: TimeArg, what: str, *, end: bool) -> tuple[dt.date, int]:
    """``(day, ns)`` of a bound: a date is its whole day (an end date included).

    Strings are read as the commands' ``--from``/``--to`` are
    (:func:`~ssmd.archive.bounds.time_bound`); a time after the last ``rx``
    an archive line can carry (2**64 - 1 ns) is taken as that last one.
    """
    if isinstance(value, str):
        return time_bound(what, value.strip(), end=end)
    if isinstance(value, dt.datetime):
        t = value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
        ns = (t - _EPOCH) // dt.timedelta(microseconds=1) * 1000
        day = t.date()
    elif isinstance(value, dt.date):
        day = value
        t = dt.datetime(day.year, day.month, day.day, tzinfo=_UTC)
        ns = (t - _EPOCH) // dt.timedelta(microseconds=1) * 1000
        if end:
            ns += 86_400 * 10**9
    else:
        raise ConfigError(f"bad {what} {value!r}: expected a date, a datetime or an ISO string")
    if ns < 0:
        raise ConfigError(f"bad {what} {value!r}: before 1970-01-01")
    return day, min(ns, MAX_RX_NS)


def time_range(
    start: TimeArg | None, end: TimeArg | None
) -> tuple[dt.date | None, dt.date | None, int | None, int | None]:
    """``(first day, last day, rx_from, rx_to)``: ``rx_from <= rx < rx_to``.

    An ``end`` given as a date includes that day (as ``--to`` does); a datetime is exclusive.
    """
    first = last = None
    rx_from = rx_to = None
    if start is not None:
        first, rx_from = instant(start, "start", end=False)
    if end is not None:
        last, rx_to = instant(end, "end", end=True)
    if rx_from is not None and rx_to is not None and rx_from >= rx_to:
        raise ConfigError(f"start {start!r} is not before end {end!r}")
    return first, last, rx_from, rx_to


def _venues(venue: str | Venue | Iterable[str | Venue] | None) -> list[str]:
    if venue is None:
        return [v.value for v in Venue]
    items = [venue] if isinstance(venue, str | Venue) else list(venue)
    return list(dict.fromkeys(Venue.parse(v).value for v in items))


def _days_in(base: Path, first: dt.date | None, last: dt.date | None) -> dict[str, Path]:
    """``{YYYY-MM-DD: partition file}`` of one venue and kind's export in the range."""
    out: dict[str, Path] = {}
    if not base.is_dir():
        return out
    for p in base.iterdir():
        if not p.name.startswith("date="):
            continue
        day = p.name[5:]
        try:
            d = dt.date.fromisoformat(day)
        except ValueError:
            continue
        if (first and d < first) or (last and d > last):
            continue
        f = p / FILE_NAME
        if f.is_file():
            out[day] = f
    return out


def scan(
    kind: str,
    venue: str | Venue | Iterable[str | Venue] | None = None,
    start: TimeArg | None = None,
    end: TimeArg | None = None,
    instruments: Iterable[str] | None = None,
    dir: PathArg | None = None,
    parquet_dir: PathArg | None = None,
    *,
    views: bool = False,
    on_warning: OnWarning | None = None,
) -> Any:
    """A polars ``LazyFrame`` of one normalized kind (see :func:`read` for the arguments).

    Days that have been exported are scanned lazily from Parquet (filters and
    column selections are pushed down to the files); days that have not are
    read from the JSONL archive when the frame is built.
    """
    pl = need_data("polars", "ssmd.scan")
    frames = _frames(pl, kind, venue, start, end, instruments, dir, parquet_dir, views, on_warning)
    if not frames:
        return _empty(pl, kind, views).lazy()
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames, how="vertical").sort("rx", maintain_order=True)


def read(
    kind: str,
    venue: str | Venue | Iterable[str | Venue] | None = None,
    start: TimeArg | None = None,
    end: TimeArg | None = None,
    instruments: Iterable[str] | None = None,
    dir: PathArg | None = None,
    parquet_dir: PathArg | None = None,
    *,
    views: bool = False,
    on_warning: OnWarning | None = None,
) -> Any:
    """One normalized kind of the archive as a polars ``DataFrame``, rows in ``rx`` order.

    ``kind``: ``trade``, ``quote``, ``book_snapshot``, ``book_delta``,
    ``lifecycle`` or ``status``. ``venue``: one, several, or all (``None``).
    ``start``/``end``: dates, datetimes (UTC when naive) or ISO strings; an
    ``end`` date includes its day, an ``end`` datetime is exclusive.
    ``instruments``: the venues' ids (``BTC/USD``, a Polymarket token id).
    ``dir``: the archive root (default ``./data``); ``parquet_dir``: the
    export (default ``{dir}/parquet``). Prices and sizes are their exact
    decimal text; ``views=True`` adds each one's float64 view (``price_f64``,
    …), which costs a read from Parquet half as much time again. A damaged
    archive file is read past
    and reported to ``on_warning`` (default: logged on ``ssmd.archive``).
    ``.to_pandas()`` gives pandas.
    """
    frame = scan(
        kind,
        venue,
        start,
        end,
        instruments,
        dir,
        parquet_dir,
        views=views,
        on_warning=on_warning,
    ).collect()
    return frame


def _empty(pl: Any, kind: str, views: bool) -> Any:
    """No rows, with the kind's exact schema."""
    pa = need_data("pyarrow", "ssmd.read")
    return pl.from_arrow(pa.schema(arrow_schema(kind, views=views)).empty_table())


def _frames(
    pl: Any,
    kind: str,
    venue: str | Venue | Iterable[str | Venue] | None,
    start: TimeArg | None,
    end: TimeArg | None,
    instruments: Iterable[str] | None,
    dir: PathArg | None,
    parquet: PathArg | None,
    views: bool,
    on_warning: OnWarning | None,
) -> list[Any]:
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r} (the normalized kinds: {', '.join(KINDS)})")
    root = Path("./data" if dir is None else dir)
    out_dir = parquet_dir(root, parquet)
    venues = _venues(venue)
    first, last, rx_from, rx_to = time_range(start, end)
    ids = None if instruments is None else list(dict.fromkeys(instruments))
    if not root.is_dir() and not out_dir.is_dir():
        raise ConfigError(f"archive directory not found: {root}")
    report = warn if on_warning is None else on_warning
    frames = []
    for v in venues:
        exported = _days_in(out_dir / v / kind, first, last)
        archived: dict[str, list[str]] = {}
        if (root / v).is_dir():
            for f in list_files(
                root,
                v,
                first.isoformat() if first else None,
                last.isoformat() if last else None,
                include_parts=True,
            ):
                archived.setdefault(Path(f).parent.name, []).append(f)
        for day in sorted(set(exported) | set(archived)):
            if day in exported:
                lf = pl.scan_parquet(exported[day], hive_partitioning=False)
                lf = _columns_of(pl, _filter(pl, lf, rx_from, rx_to, ids), kind, views)
            else:
                lf = _from_archive(pl, kind, v, archived[day], rx_from, rx_to, ids, views, report)
            frames.append(lf)
    return frames


def _view(pl: Any, text: Any) -> Any:
    """The float64 view of decimal text: the nearest double, null unless finite."""
    x = text.cast(pl.Float64, strict=False)
    return pl.when(x.is_finite()).then(x)


def _columns(pl: Any, fields: Any, field: Any, present: set[str]) -> list[Any]:
    """Expressions of ``fields`` (a schema's): those ``present``, and views not present
    derived from their text."""
    out = []
    for f in fields:
        name = f.name
        if name in present:
            out.append(field(name))
        elif name.endswith("_f64"):
            out.append(_view(pl, field(name[: -len("_f64")])).alias(name))
    return out


def _columns_of(pl: Any, lf: Any, kind: str, views: bool) -> Any:
    """``lf`` (one file's columns) in the kind's order, with each decimal's float64 view
    after its text when ``views`` (derived from the text), without any otherwise.

    A file written before the views were dropped from the export (schema
    version 1) stores them: returned as it is with ``views``, without them otherwise.
    """
    schema = lf.collect_schema()
    if views == any(_has_views(pl, name, dtype) for name, dtype in schema.items()):
        return lf
    pa = need_data("pyarrow", "ssmd.read")
    present = set(schema.names())
    exprs = []
    for f in pa.schema(arrow_schema(kind, views=views)):
        if pa.types.is_list(f.type):
            item = f.type.value_type
            fields = [item.field(i) for i in range(item.num_fields)]
            stored = {g.name for g in fields if not g.name.endswith("_f64")}
            row = pl.struct(_columns(pl, fields, pl.element().struct.field, stored))
            exprs.append(pl.col(f.name).list.eval(row).alias(f.name))
        else:
            exprs.extend(_columns(pl, [f], pl.col, present))
    return lf.select(exprs)


def _has_views(pl: Any, name: str, dtype: Any) -> bool:
    if name.endswith("_f64"):
        return True
    if isinstance(dtype, pl.List):
        return _has_views(pl, "", dtype.inner)
    if isinstance(dtype, pl.Struct):
        return any(_has_views(pl, f.name, f.dtype) for f in dtype.fields)
    return False


def _filter(pl: Any, lf: Any, rx_from: int | None, rx_to: int | None, ids: Any) -> Any:
    rx = pl.col("rx").dt.epoch("ns")
    if rx_from is not None:
        lf = lf.filter(rx >= rx_from)
    if rx_to is not None:
        lf = lf.filter(rx < rx_to)
    if ids is not None:
        lf = lf.filter(pl.col("instrument").is_in(ids))
    return lf


def _from_archive(
    pl: Any,
    kind: str,
    venue: str,
    files: list[str],
    rx_from: int | None,
    rx_to: int | None,
    ids: list[str] | None,
    views: bool,
    report: OnWarning,
) -> Any:
    def one(group: list[str]) -> tuple[list[Any], list[Any]]:
        reader = ColumnReader(
            group,
            venue,
            kinds=[kind],
            instruments=ids,
            rx_from=rx_from,
            rx_to=rx_to,
            views=views,
        )
        return [pl.DataFrame(batch) for _, batch in reader], reader.warnings

    groups = _by_time(files, _workers())
    if len(groups) == 1:
        results = [one(groups[0])]
    else:
        # the core reads with the GIL released: a reader per group of windows, each
        # on its own core, the groups in time order
        with ThreadPoolExecutor(len(groups)) as pool:
            results = list(pool.map(one, groups))
    parts = [p for got, _ in results for p in got]
    for _, warnings in results:
        for w in warnings:
            report(w)
    if not parts:
        return _empty(pl, kind, views).lazy()
    frame = parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)
    if len(groups) > 1 and not frame["rx"].is_sorted():
        # a file holding lines from outside its window: the merge's order, restored
        frame = frame.sort("rx", maintain_order=True)
    return frame.lazy()


def _workers() -> int:
    """Threads for reading one day of the JSONL archive: the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _by_time(files: list[str], n: int) -> list[list[str]]:
    """``files`` of one day in up to ``n`` groups of whole time windows (the ``HHMM``
    before a file name's first ``-``), in time order; one group when the names do not
    say their window or there are fewer than two windows a group."""
    windows: dict[str, list[str]] = {}
    for f in files:
        head = Path(f).name.split("-", 1)[0]
        if len(head) != 4 or not head.isdigit():
            return [files]
        windows.setdefault(head, []).append(f)
    order = sorted(windows)
    n = min(n, len(order) // 2)
    if n <= 1:
        return [files]
    step = len(order) / n
    return [
        [f for w in order[round(i * step) : round((i + 1) * step)] for f in windows[w]]
        for i in range(n)
    ]
