"""A backtest over a damaged archive reads every intact member, says which file lost
content, and gives the fires the intact data gives."""

from __future__ import annotations

import random
from pathlib import Path

from signal_helpers import T0, S, kalshi_trade, kraken_trade, lines
from ssmd.archive import ArchiveWriter
from ssmd.signals import find_signal
from ssmd.signals.backtest import Backtest, run_backtest


def _write(root: Path, venue: str, data: bytes, chunk: int = 200) -> None:
    """One gzip member per ``chunk`` lines (a flush each)."""
    rows = data.splitlines(keepends=True)
    with ArchiveWriter(str(root), venue, "w", fsync=False) as w:
        for i in range(0, len(rows), chunk):
            w.write(b"".join(rows[i : i + chunk]))
            w.flush()


def _archive(root: Path) -> None:
    rng = random.Random(5)
    k, r = [], []
    for i in range(2000):
        rx = T0 + i * 3 * S  # 100 minutes
        size = rng.choice(["50000.00", "400000.00", "100.00"])
        k.append((rx, kalshi_trade(f"KX-{i % 3}", "0.5000", size, "yes", i + 1)))
        r.append((rx + 1, kraken_trade("BTC/USD", "90000.5", str(rng.randint(1, 40)))))
    _write(root, "kalshi", lines("kalshi", k, "k1"))
    _write(root, "kraken", lines("kraken", r, "r1"))


def _run(root: Path) -> tuple[list[bytes], list[str], int]:
    res = run_backtest(Backtest(find_signal("volume-1m-1min"), root=root))
    return [f.body() for f in res.fires], res.warnings, res.counters.get("records", 0)


def test_a_damaged_file_costs_only_its_damaged_members(tmp_path: Path) -> None:
    whole, damaged = tmp_path / "whole", tmp_path / "damaged"
    _archive(whole)
    _archive(damaged)
    kraken_file = sorted(damaged.glob("kraken/**/*.jsonl.gz"))[-1]  # rotated: the last
    kraken_file.write_bytes(kraken_file.read_bytes()[:-20])  # ends inside its last member
    fires, warnings, records = _run(whole)
    fires_d, warnings_d, records_d = _run(damaged)
    assert warnings == [] and len(warnings_d) == 1 and str(kraken_file) in warnings_d[0]
    assert records - 200 <= records_d < records  # one member of 200 lines lost, no more
    kalshi = [f for f in fires if b'"kalshi"' in f]
    assert kalshi and kalshi == [f for f in fires_d if b'"kalshi"' in f]
    kraken, kraken_d = ([f for f in fs if b'"kraken"' in f] for fs in (fires, fires_d))
    assert kraken and kraken_d == kraken[: len(kraken_d)]  # the intact part fires the same
