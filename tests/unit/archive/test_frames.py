"""``ssmd.read`` and ``ssmd.scan``: the same frame from Parquet and from JSONL, filters, bounds."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import ssmd
from archive_damage import day_dir
from archive_helpers import SEC, T0, envelope
from golden import FIXTURES
from ssmd.archive import ArchiveWriter
from ssmd.archive.parquet import export_parquet
from ssmd.errors import ConfigError

TRADE = (
    '{"channel":"trade","type":"update","data":[{"symbol":"%s","side":"buy","price":%d.25,'
    '"qty":0.5,"ord_type":"limit","trade_id":%d,"timestamp":"2024-03-01T00:00:00Z"}]}'
)
DAY = 86_400 * SEC


def _archive(root: Path, days: int = 2, per_day: int = 300) -> None:
    """Kraken trades of two pairs over ``days`` days, two writers, plus a gap line."""
    wa = ArchiveWriter(root, "kraken", "a", fsync=False)
    wb = ArchiveWriter(root, "kraken", "b", fsync=False)
    n = 0
    for d in range(days):
        for i in range(per_day):
            sym = "BTC/USD" if i % 3 else "ETH/USD"
            rx = T0 + d * DAY + i * 60 * SEC
            line = envelope(
                rx, f"prod.kraken.json.trade.{sym.replace('/', '_')}", TRADE % (sym, n, n)
            )
            (wa if i % 2 else wb).write(line)
            n += 1
    wa.write(envelope(T0 + 5 * SEC, "prod.kraken.json.status.k1", '{"ssmd":"gap","missing":3}'))
    wa.close()
    wb.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "data"
    _archive(r)
    return r


@pytest.mark.parametrize("views", [False, True])
def test_parquet_and_jsonl_give_the_same_frame(root: Path, views: bool) -> None:
    from_jsonl = ssmd.read("trade", venue="kraken", dir=root, views=views)
    assert from_jsonl.height == 600
    assert from_jsonl["rx"].is_sorted()
    export_parquet(root)
    from_parquet = ssmd.read("trade", venue="kraken", dir=root, views=views)
    assert from_parquet.equals(from_jsonl)
    assert from_parquet.schema == from_jsonl.schema
    assert from_parquet["price"][:2].to_list() == ["0.25", "1.25"]
    assert ("price_f64" in from_parquet.columns) == views
    if views:
        assert from_parquet["price_f64"][:2].to_list() == [0.25, 1.25]
    # a lazy scan with a projection and a filter pushed to the files
    lf = ssmd.scan("trade", venue="kraken", dir=root)
    assert isinstance(lf, pl.LazyFrame)
    got = lf.filter(pl.col("instrument") == "ETH/USD").select("trade_id").collect()
    assert got.height == 200


def test_views_are_derived_lazily_and_version_1_files_still_read(root: Path) -> None:
    """The export stores the text; a projection without views reads no view. A file of
    schema version 1 (views stored in the file) reads to the same frame."""
    from_jsonl = ssmd.read("trade", venue="kraken", dir=root, views=True)
    export_parquet(root)
    lf = ssmd.scan("trade", venue="kraken", dir=root, views=True)
    assert lf.select("size").collect()["size"].to_list() == from_jsonl["size"].to_list()
    assert "price_f64" in lf.collect_schema().names()
    for f in (root / "parquet" / "kraken" / "trade").rglob("*.parquet"):
        old = pl.read_parquet(f).with_columns(
            pl.col("price").cast(pl.Float64).alias("price_f64"),
            pl.col("size").cast(pl.Float64).alias("size_f64"),
        )
        old.select(from_jsonl.columns).write_parquet(f)
    assert ssmd.read("trade", venue="kraken", dir=root, views=True).equals(from_jsonl)


def _no_views(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` without its float64 views, book levels' included."""
    cols = []
    for name, dtype in frame.schema.items():
        if name.endswith("_f64"):
            continue
        if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
            keep = [f.name for f in dtype.inner.fields if not f.name.endswith("_f64")]
            row = pl.struct([pl.element().struct.field(k) for k in keep])
            cols.append(pl.col(name).list.eval(row))
        else:
            cols.append(pl.col(name))
    return frame.select(cols)


def test_the_default_frame_is_the_exact_text_alone(root: Path) -> None:
    """By default (``views=False``) the frame of ``views=True`` without the float64
    views, whichever way the rows come (JSONL, Parquet, a schema version 1 file that
    stores views, no rows), book levels included; ``views=True`` the same frame from
    each."""
    book = (FIXTURES / "kraken" / "ws_book.jsonl").read_text().splitlines()[0]
    with ArchiveWriter(root, "kraken", "c", fsync=False) as w:
        w.write(envelope(T0 + 7 * SEC, "prod.kraken.json.orderbook.BTC_USD", book))
    full = {k: ssmd.read(k, "kraken", dir=root, views=True) for k in ("trade", "book_snapshot")}
    assert full["book_snapshot"].height == 1
    for when in ("jsonl", "parquet", "version 1"):
        if when == "parquet":
            export_parquet(root)
        if when == "version 1":
            for k, frame in full.items():
                files = list((root / "parquet" / "kraken" / k).rglob("*.parquet"))
                assert files, k
                for f in files:
                    day = dt.date.fromisoformat(f.parent.name.removeprefix("date="))
                    # the views stored, as schema version 1 had them
                    frame.filter(pl.col("rx").dt.date() == day).write_parquet(f)
        for k, frame in full.items():
            got = ssmd.read(k, "kraken", dir=root)
            assert not [c for c in got.columns if c.endswith("_f64")], when
            assert not any("_f64" in str(t) for t in got.schema.values()), when  # levels
            assert got.equals(_no_views(frame)), (when, k)
            assert got.equals(ssmd.read(k, "kraken", dir=root, views=False))
            assert ssmd.read(k, "kraken", dir=root, views=True).equals(frame), (when, k)
            assert ssmd.scan(k, "kraken", dir=root).collect_schema() == got.schema
    empty = ssmd.read("quote", "kraken", dir=root)
    assert empty.height == 0 and "bid" in empty.columns and "bid_f64" not in empty.columns


def test_days_not_exported_come_from_the_archive(root: Path) -> None:
    export_parquet(root, date_from="2024-03-01", date_to="2024-03-01")
    assert not (root / "parquet" / "kraken" / "trade" / "date=2024-03-02").exists()
    mixed = ssmd.read("trade", "kraken", dir=root)
    shutil.rmtree(root / "parquet")
    assert mixed.equals(ssmd.read("trade", "kraken", dir=root))


@pytest.mark.parametrize("exported", [False, True])
def test_bounds_and_instruments(root: Path, exported: bool) -> None:
    if exported:
        export_parquet(root)
    day2 = ssmd.read("trade", "kraken", start="2024-03-02", end="2024-03-02", dir=root)
    assert day2.height == 300
    assert day2["rx"].min() == dt.datetime(2024, 3, 2, tzinfo=dt.timezone.utc)
    first_hour = ssmd.read(
        "trade",
        "kraken",
        start=dt.datetime(2024, 3, 1),
        end="2024-03-01T01:00:00Z",
        instruments=["BTC/USD"],
        dir=root,
    )
    assert first_hour.height == 40  # 60 minutes, two of every three are BTC/USD
    assert set(first_hour["instrument"]) == {"BTC/USD"}
    assert first_hour["rx"].max() < dt.datetime(2024, 3, 1, 1, tzinfo=dt.timezone.utc)
    status = ssmd.read("status", "kraken", dir=root)
    assert status.select("origin", "status").rows() == [("ssmd", "gap")]
    nothing = ssmd.read("book_delta", "kraken", dir=root)
    assert nothing.height == 0 and "changes" in nothing.columns


def test_far_ends_of_time_are_open_bounds(root: Path) -> None:
    """An end after the last rx there can be (the year 2554) reads everything, as ``--to`` does."""
    every = ssmd.read("trade", "kraken", dir=root)
    for end in ("9999-12-31", "9999-12-31T23:59:59", dt.date.max, dt.datetime(3000, 1, 1)):
        assert ssmd.read("trade", "kraken", end=end, dir=root).equals(every), end
    assert ssmd.read("trade", "kraken", start="1970-01-01", dir=root).equals(every)


def test_damage_is_reported_and_the_rest_read(root: Path) -> None:
    path = sorted(day_dir(root, "kraken", "2024-03-02").glob("*-a.jsonl.gz"))[0]
    path.write_bytes(path.read_bytes()[:-20])  # the file ends inside its last member
    warnings: list[Any] = []
    frame = ssmd.read("trade", "kraken", dir=root, on_warning=warnings.append)
    assert len(warnings) == 1 and str(path) in str(warnings[0])
    assert 300 <= frame.height < 600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "book"}, "unknown kind 'book'"),
        ({"kind": "trade", "venue": "binance"}, "unknown venue 'binance'"),
        ({"kind": "trade", "start": "yesterday"}, "bad start 'yesterday'"),
        ({"kind": "trade", "start": "2024-03-02", "end": "2024-03-01T00:00"}, "is not before"),
        ({"kind": "trade", "dir": "/nonexistent/ssmd"}, "archive directory not found"),
        ({"kind": "trade", "end": "18446744073709551616"}, "below 2\\*\\*64"),
        ({"kind": "trade", "start": dt.datetime(1969, 12, 31)}, "before 1970"),
    ],
)
def test_bad_arguments(root: Path, kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("dir", root)
    with pytest.raises(ConfigError, match=message):
        ssmd.read(**kwargs)


def _merged(root: Path) -> Any:
    """The day read by one core reader over all its files (the merge, in rx order)."""
    from ssmd._core import ColumnReader, list_files

    files = list_files(root, "kraken", "2024-03-01", "2024-03-01", include_parts=True)
    reader = ColumnReader(files, "kraken", kinds=["trade"], views=False)
    parts = [pl.DataFrame(b) for _, b in reader]
    return pl.concat(parts)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_day_read_in_groups_of_windows_is_the_merge(
    root: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssmd.archive.frames as frames

    monkeypatch.setattr(frames, "_workers", lambda: workers)
    got = ssmd.read("trade", "kraken", "2024-03-01", "2024-03-01", dir=root)
    assert got.height == 300
    assert got.equals(_merged(root))
    files = sorted(str(p) for p in day_dir(root).iterdir() if p.name.endswith(".jsonl.gz"))
    groups = frames._by_time(files, workers)
    assert len(groups) == workers  # 20 windows of two writers' files
    assert sorted(f for g in groups for f in g) == files


def test_a_file_with_lines_outside_its_window_is_put_in_order(root: Path) -> None:
    """A file named for the day's last window holding early lines (a repaired or copied
    file): the groups are read apart, then sorted back into the merge's order."""
    want = _merged(root)
    files = sorted(p for p in day_dir(root).iterdir() if p.name.endswith(".gz"))
    first = files[0]
    first.rename(first.with_name("2345" + first.name[4:]))
    got = ssmd.read("trade", "kraken", "2024-03-01", "2024-03-01", dir=root)
    assert got["rx"].is_sorted()
    assert got.sort("rx", "trade_id").equals(want.sort("rx", "trade_id"))
