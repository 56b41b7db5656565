"""Core throughput: parse + route + envelope over the venue mix, batched.

Compared in the same run with a pure-Python stdlib-json implementation of the
same work (and the same code on orjson). Messages per second are in
``extra_info``; ``python benches/python/report.py`` prints the ratios.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from baseline_router import BaselineRouter

from ssmd.core import Processor
from ssmd.samples import mixed

BATCH = 1000


def _workload(benchmark: Any) -> dict[str, list[bytes]]:
    return mixed(400 if benchmark.disabled else 40_000)


FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def fixture_mix(total: int) -> dict[str, list[bytes]]:
    """The golden fixture frames of every venue (controls, bad input and all),
    repeated to about ``total`` frames."""
    out: dict[str, list[bytes]] = {}
    for venue in ("kalshi", "kraken", "kraken_futures", "polymarket"):
        frames = [
            line
            for p in sorted((FIXTURES / venue).glob("ws_*.jsonl"))
            if not p.name.endswith(".expected.jsonl")
            for line in p.read_bytes().splitlines()
        ]
        reps = max(1, total // 4 // len(frames))
        out[venue] = frames * reps
    return out


PRECISIONS = {"BTC/USD": (1, 8), "ETH/USD": (2, 8), "SOL/USD": (2, 8)}


def run_core(work: dict[str, list[bytes]], with_controls: bool = False) -> int:
    n = 0
    for venue, frames in work.items():
        p = Processor(venue, "bench")
        if venue == "kraken":
            for s, (pp, qp) in PRECISIONS.items():
                p.set_precision(s, pp, qp)
        for i in range(0, len(frames), BATCH):
            b = p.process(frames[i : i + BATCH], 1_700_000_000_000_000_000)
            b.lines()
            n += len(b) + (len(b.controls) if with_controls else 0)
    return n


def run_baseline(work: dict[str, list[bytes]], loads: Any) -> int:
    n = 0
    for venue, frames in work.items():
        r = BaselineRouter(venue, "bench", loads)
        r.precisions = dict(PRECISIONS)
        for i in range(0, len(frames), BATCH):
            n += r.process(frames[i : i + BATCH], 1_700_000_000_000_000_000).count(b"\n")
    return n


def _record(benchmark: Any, n: int) -> None:
    benchmark.extra_info["messages"] = n
    if not benchmark.disabled and benchmark.stats:
        benchmark.extra_info["messages_per_s"] = round(n / benchmark.stats.stats.mean)


@pytest.mark.benchmark(group="core-route")
def test_core_batched(benchmark: Any) -> None:
    work = _workload(benchmark)
    n = benchmark(run_core, work)
    assert n >= sum(len(f) for f in work.values())
    _record(benchmark, n)


@pytest.mark.benchmark(group="core-route")
@pytest.mark.parametrize("parser", ["stdlib_json", "orjson"])
def test_baseline_python_router(benchmark: Any, parser: str) -> None:
    """The same work in plain Python, on stdlib json or orjson."""
    import json

    loads = json.loads if parser == "stdlib_json" else orjson.loads
    work = _workload(benchmark)
    n = benchmark.pedantic(run_baseline, (work, loads), rounds=1 if benchmark.disabled else 3)
    assert n >= sum(len(f) for f in work.values())
    _record(benchmark, n)


@pytest.mark.benchmark(group="core-fixture-mix")
def test_core_fixture_mix(benchmark: Any) -> None:
    """The shared fixture frames as they are (about a third are acks, heartbeats
    and errors, counted as processed messages here), repeated."""
    work = fixture_mix(400 if benchmark.disabled else 40_000)
    n = benchmark(run_core, work, True)
    assert n >= sum(len(f) for f in work.values())
    _record(benchmark, n)


@pytest.mark.benchmark(group="core-fixture-mix")
def test_baseline_fixture_mix_stdlib_json(benchmark: Any) -> None:
    import json

    work = fixture_mix(400 if benchmark.disabled else 40_000)
    n = benchmark.pedantic(run_baseline, (work, json.loads), rounds=1 if benchmark.disabled else 3)
    _record(benchmark, n)


@pytest.mark.benchmark(group="core-per-frame")
def test_core_one_call_per_frame(benchmark: Any) -> None:
    """One boundary crossing per frame, to show what batching buys."""
    work = _workload(benchmark)

    def run() -> int:
        n = 0
        for venue, frames in work.items():
            p = Processor(venue, "bench")
            for f in frames:
                n += len(p.process([f], 1))
        return n

    _record(benchmark, benchmark(run))


_EL = (
    b'{"event_type":"last_trade_price","asset_id":"7","market":"0xab","price":"0.55",'
    b'"side":"SELL","size":"100","fee_rate_bps":"0","timestamp":"1757908892351"}'
)


def _elements(benchmark: Any) -> int:
    return 1_000 if benchmark.disabled else 100_000


@pytest.mark.benchmark(group="core-linear")
def test_core_one_array_frame(benchmark: Any) -> None:
    """One Polymarket frame of 100 000 elements (was quadratic: 51 s)."""
    n = _elements(benchmark)
    frame = b"[" + b",".join([_EL] * n) + b"]"
    p = Processor("polymarket", "bench")
    assert benchmark(lambda: len(p.process([frame], 1))) == n
    _record(benchmark, n)


@pytest.mark.benchmark(group="core-linear")
def test_core_separate_frames(benchmark: Any) -> None:
    """The same 100 000 elements as 100 000 frames in one batch."""
    n = _elements(benchmark)
    frames = [_EL] * n
    p = Processor("polymarket", "bench")
    assert benchmark(lambda: len(p.process(frames, 1))) == n
    _record(benchmark, n)
