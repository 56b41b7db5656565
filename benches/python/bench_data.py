"""Data out of the archive: Parquet export, reads, book rebuilds (docs/data.md).

Input: a day of Kraken spot trades (one trade per message, as the venue
sends most of them), built from the shape of
``tests/fixtures/kraken/ws_trade.jsonl`` with prices, sizes, sides, ids
and times varied by a seeded generator (each pair's price a random walk in
whole ticks over a range of a few percent, see :func:`trade_frames`), run through the core
(``Processor``) into the gzip archive as the connector writes it: 1 M
messages in a timed run, 20 k under ``--benchmark-disable`` (the smoke run
of ``make test``). Book rebuilds use the Kraken book frames of
``ssmd.samples`` (valid CRC32 checksums), through the core the same way.

Groups and what ``extra_info`` records:

* ``data-export``: ``ssmd archive export`` of that day (Rust columns,
  pyarrow Parquet) against ``polars.read_ndjson`` of the same gzip files plus
  a Python normalization into the same trade columns written with polars,
  both in the same run: ``records_per_cpu_s`` (process CPU time, all
  threads), ``records_per_s`` (wall), ``parquet_vs_gzip`` (Parquet bytes
  as a fraction of the gzip JSONL bytes) and ``correct``.
* ``data-read``: ``ssmd.read("trade", …)`` of the day from the Parquet
  export and from the JSONL archive, each as the default frame (exact
  text) and with ``views=True`` (``-views``): ``rows_per_s``.
* ``data-book``: ``ssmd.books`` over the busiest Kraken book, checksum
  verified at every step: ``updates_per_s``.

Timed run: ``python -m pytest benches/python/bench_data.py --benchmark-only``
after ``maturin develop --release``. On the shared 2-core machine figures
are noisy: compare only figures of one run.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import ssmd
from ssmd.archive import ArchiveWriter, list_files
from ssmd.archive.parquet import export_parquet
from ssmd.core import Processor
from ssmd.samples import stream

TIMED_TRADES = 1_000_000
SMOKE_TRADES = 20_000
TIMED_BOOK_FRAMES = 300_000
SMOKE_BOOK_FRAMES = 5_000
DAY0 = 1_772_323_200_000_000_000  # 2026-03-01T00:00:00Z
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "DOGE/USD", "ADA/USD")
#: each pair's opening price, written with the pair's price decimals on Kraken
OPEN = ("67000.0", "3500.00", "150.00", "0.60000", "0.1500000", "0.450000")


def _template() -> dict[str, Any]:
    """The first trade of the Kraken trade fixture: the shape every generated message has."""
    for line in (FIXTURES / "kraken" / "ws_trade.jsonl").read_text().splitlines():
        frame = json.loads(line)
        if frame.get("channel") == "trade" and frame.get("data"):
            return dict(frame["data"][0])
    raise AssertionError("no trade in tests/fixtures/kraken/ws_trade.jsonl")  # pragma: no cover


def trade_frames(n: int, seed: int = 11) -> list[bytes]:
    """``n`` trades spread over the pairs. Each pair's price walks from its opening
    price in steps of whole ticks, sized so that the day's range is a few percent
    (a busy pair trades at thousands of different prices in a day, not at a
    new one every trade); sizes are random to the eighth decimal."""
    rng = random.Random(seed)
    t = _template()
    keys = list(t)
    decimals = [len(p) - p.index(".") - 1 for p in OPEN]
    ticks = [int(p.replace(".", "")) for p in OPEN]
    # a step's spread: 2 % of the price over the pair's share of the day's trades
    spread = [max(1.0, 0.02 * k / (n / len(PAIRS)) ** 0.5) for k in ticks]
    out = []
    for i in range(n):
        j = rng.randrange(len(PAIRS))
        pair = PAIRS[j]
        ticks[j] = max(1, ticks[j] + round(rng.gauss(0, spread[j])))
        digits = str(ticks[j]).rjust(decimals[j] + 1, "0")
        price = f"{digits[: -decimals[j]]}.{digits[-decimals[j] :]}"
        qty = f"{rng.randrange(0, 5)}.{rng.randrange(10**8):08d}"
        ms = i * 86_400_000 // n
        fields = {
            "symbol": f'"{pair}"',
            "side": '"buy"' if rng.random() < 0.5 else '"sell"',
            "price": price,
            "qty": qty,
            "ord_type": '"limit"',
            "trade_id": str(100_000_000 + i),
            "timestamp": f'"2026-03-01T{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:'
            f'{ms // 1000 % 60:02d}.{ms % 1000:03d}000Z"',
        }
        body = ",".join(f'"{k}":{fields[k]}' for k in keys if k in fields)
        out.append(f'{{"channel":"trade","type":"update","data":[{{{body}}}]}}'.encode())
    return out


def _capture(root: Path, venue: str, frames: list[bytes], span_ns: int) -> None:
    """Frames through the core into the archive, receive times spread over ``span_ns``."""
    p = Processor(venue, f"{venue}-bench")
    with ArchiveWriter(root, venue, "bench", fsync=False) as w:
        step = max(1, span_ns // max(1, len(frames)))
        for start in range(0, len(frames), 10_000):
            chunk = frames[start : start + 10_000]
            rx = [DAY0 + (start + i) * step for i in range(len(chunk))]
            w.write(p.process(chunk, rx).lines())


@pytest.fixture(scope="module")
def trade_day(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    disabled = request.config.getoption("benchmark_disable")
    root = tmp_path_factory.mktemp("trades")
    n = SMOKE_TRADES if disabled else TIMED_TRADES
    _capture(root, "kraken", trade_frames(n), 86_400 * 10**9 - 1)
    return root


def _rounds(benchmark: Any) -> int:
    """Rounds of the export and its baseline alike, and of the book rebuild (the best one
    counts); a read, a twentieth of a second, runs nine."""
    return 1 if benchmark.disabled else 3


def _cpu(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _gzip_bytes(root: Path) -> int:
    return sum(Path(f).stat().st_size for f in list_files(root, "kraken"))


@pytest.mark.benchmark(group="data-export")
def test_export_parquet(benchmark: Any, trade_day: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    timings: list[tuple[float, float]] = []

    def run() -> Any:
        result, wall, cpu = _cpu(lambda: export_parquet(trade_day, out, venues=["kraken"]))
        timings.append((wall, cpu))
        return result

    result = benchmark.pedantic(run, rounds=_rounds(benchmark), iterations=1)
    records = result.rows
    wall, cpu = min(timings)
    parquet = sum(f.bytes for f in result.files)
    benchmark.extra_info.update(
        records=records,
        records_per_s=round(records / wall),
        records_per_cpu_s=round(records / cpu),
        parquet_bytes=parquet,
        gzip_jsonl_bytes=_gzip_bytes(trade_day),
        parquet_vs_gzip=round(parquet / _gzip_bytes(trade_day), 3),
        correct=result.complete
        and ssmd.read("trade", "kraken", dir=trade_day, parquet_dir=out).height == records,
    )
    assert benchmark.extra_info["correct"]


def _python_normalize(root: Path, out: Path) -> int:
    """The way without ssmd's export: polars.read_ndjson of each file, trades normalized
    in Python, written with polars."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("rx", "instrument", "price", "size", "side", "trade_id")
    }
    for f in list_files(root, "kraken"):
        frame = pl.read_ndjson(io.BytesIO(gzip.decompress(Path(f).read_bytes())))
        for env in frame.select("rx", "msg").iter_rows(named=True):
            for t in env["msg"].get("data") or []:
                rows["rx"].append(env["rx"])
                rows["instrument"].append(t["symbol"])
                rows["price"].append(str(t["price"]))
                rows["size"].append(str(t["qty"]))
                rows["side"].append(t["side"])
                rows["trade_id"].append(str(t["trade_id"]))
    df = pl.DataFrame(rows)
    df.write_parquet(out / "trades.parquet", compression="zstd")
    return df.height


@pytest.mark.benchmark(group="data-export")
def test_baseline_read_ndjson_and_python(benchmark: Any, trade_day: Path, tmp_path: Path) -> None:
    timings: list[tuple[float, float]] = []

    def run() -> int:
        n, wall, cpu = _cpu(lambda: _python_normalize(trade_day, tmp_path))
        timings.append((wall, cpu))
        return int(n)

    records = benchmark.pedantic(run, rounds=_rounds(benchmark), iterations=1)
    wall, cpu = min(timings)
    benchmark.extra_info.update(
        records=records,
        records_per_s=round(records / wall),
        records_per_cpu_s=round(records / cpu),
        correct=records
        == ssmd.read("trade", "kraken", dir=trade_day, parquet_dir=tmp_path / "none").height,
    )
    assert benchmark.extra_info["correct"]


@pytest.mark.benchmark(group="data-read")
@pytest.mark.parametrize("source", ["parquet", "parquet-views", "jsonl", "jsonl-views"])
def test_read_trades(benchmark: Any, trade_day: Path, tmp_path: Path, source: str) -> None:
    out = tmp_path / "parquet"
    if source.startswith("parquet"):
        export_parquet(trade_day, out, venues=["kraken"])
    views = source.endswith("-views")
    frame = benchmark.pedantic(
        lambda: ssmd.read("trade", "kraken", dir=trade_day, parquet_dir=out, views=views),
        # a read is a twentieth of a second: more rounds, the best one counted
        rounds=1 if benchmark.disabled else 9,
        iterations=1,
    )
    if not benchmark.disabled and benchmark.stats:
        benchmark.extra_info["rows_per_s"] = round(frame.height / benchmark.stats.stats.min)
    benchmark.extra_info["rows"] = frame.height
    assert frame["rx"].is_sorted()
    assert ("price_f64" in frame.columns) == views  # the frame the label says
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.benchmark(group="data-book")
def test_kraken_book_rebuild(benchmark: Any, tmp_path: Path) -> None:
    n = SMOKE_BOOK_FRAMES if benchmark.disabled else TIMED_BOOK_FRAMES
    frames = [f for f in stream("kraken", n) if b'"channel":"book"' in f]
    _capture(tmp_path, "kraken", frames, 3_600 * 10**9)
    deltas = ssmd.read("book_delta", "kraken", dir=tmp_path)
    busiest = deltas.group_by("instrument").len().sort("len", descending=True)["instrument"][0]

    def run() -> tuple[int, bool]:
        n, every = 0, True
        for b in ssmd.books("kraken", busiest, DAY0, DAY0 + 86_400 * 10**9, dir=tmp_path):
            n += 1
            every &= b.checksums_verified == b.updates + 1  # the snapshot and every update
        return n, every

    updates, verified = benchmark.pedantic(run, rounds=_rounds(benchmark), iterations=1)
    benchmark.extra_info.update(instrument=busiest, updates=updates, correct=verified)
    if not benchmark.disabled and benchmark.stats:
        benchmark.extra_info["updates_per_s"] = round(updates / benchmark.stats.stats.min)
    assert updates > 10 and verified  # every step checked against the venue's CRC32
