"""Signals: backtests over a day of trades, and the live runner on JetStream.

- ``test_backtest_cli``: ``ssmd backtest run volume-1m-30min`` as a user runs
  it (a subprocess: start-up, reading the gzip archive, the engine, the
  report), CPU seconds from ``getrusage`` of the child; records per
  CPU-second with start-up included, and the run's own figure without it.
- ``test_baseline_python``: a pure-Python ``gzip`` + ``json`` replay
  computing the same signal over the same files (baseline_signal.py), in
  the same run; ``correct`` says its fires equal the engine's.
- ``test_python_evaluate``: the same backtest calling the signal's Python
  ``evaluate`` per record (``--python-evaluate``): the rate of a signal
  that has no rule.
- ``test_live_runner``: ``tools/bench_signals_live.py`` (needs ``NATS_URL``):
  the runner's records/s draining a full stream, and ingest-to-fire latency
  p50/p99 at 10 000 records/s.

The day is ``SSMD_BENCH_TRADES`` trades (default 3 000 000; 30 000 in the
smoke run, ``--benchmark-disable``) written once per session by
signals_data.py. Nothing is asserted about the figures; docs/backtest.md
says what they were.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from baseline_signal import replay_volume
from signals_data import make_trade_day

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_signals_live.py"


@pytest.fixture(scope="module")
def trade_day(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    disabled = request.config.getoption("benchmark_disable", False)
    n = 30_000 if disabled else int(os.environ.get("SSMD_BENCH_TRADES", "3000000"))
    root = tmp_path_factory.mktemp("trade-day")
    make_trade_day(root, n)
    return root


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def test_backtest_cli(benchmark: Any, trade_day: Path, tmp_path: Path) -> None:
    out: dict[str, Any] = {}

    def run() -> None:
        c0, t0 = _child_cpu(), time.perf_counter()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "ssmd",
                "backtest",
                "run",
                "volume-1m-30min",
                "--dir",
                str(trade_day),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--no-progress",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        out.update(json.loads(r.stdout))
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = _child_cpu() - c0

    benchmark.group = "signals-backtest"
    benchmark.pedantic(run, rounds=1, iterations=1)
    records = out["records"]
    benchmark.extra_info.update(
        records=records,
        lines=out["lines"],
        fires=out["fires"],
        process_cpu_seconds=round(out["cpu"], 3),
        process_wall_seconds=round(out["wall"], 3),
        records_per_cpu_second=round(records / out["cpu"]),
        run_cpu_seconds=out["cpu_seconds"],
        run_records_per_cpu_second=out["records_per_cpu_second"],
    )
    (tmp_path.parent / "engine-fires.json").write_text(json.dumps(_fires(out["dir"])))


def _fires(run_dir: str) -> list[list[Any]]:
    with open(Path(run_dir) / "fires.jsonl", encoding="utf-8") as f:
        return [[d["rx"], d["instrument"]] for d in map(json.loads, f)]


def test_baseline_python(benchmark: Any, trade_day: Path, tmp_path: Path) -> None:
    out: dict[str, Any] = {}

    def run() -> None:
        t0 = time.process_time()
        fires, trades = replay_volume(trade_day)
        out.update(fires=fires, trades=trades, cpu=time.process_time() - t0)

    benchmark.group = "signals-backtest"
    benchmark.pedantic(run, rounds=1, iterations=1)
    engine = tmp_path.parent / "engine-fires.json"
    correct = None
    if engine.exists():
        correct = [list(f) for f in out["fires"]] == json.loads(engine.read_text())
        assert correct
    benchmark.extra_info.update(
        trades=out["trades"],
        fires=len(out["fires"]),
        cpu_seconds=round(out["cpu"], 3),
        trades_per_cpu_second=round(out["trades"] / out["cpu"]),
        correct=correct,
    )


def test_python_evaluate(benchmark: Any, trade_day: Path) -> None:
    from ssmd.signals import find_signal
    from ssmd.signals.backtest import Backtest, run_backtest

    out: dict[str, Any] = {}

    def run() -> None:
        res = run_backtest(Backtest(find_signal("volume-1m-30min"), root=trade_day, python=True))
        out.update(records=res.counters["records"], cpu=res.cpu_seconds, fires=len(res.fires))

    benchmark.group = "signals-backtest"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(
        records=out["records"],
        fires=out["fires"],
        cpu_seconds=round(out["cpu"], 3),
        records_per_cpu_second=round(out["records"] / out["cpu"]),
    )


def test_live_runner(benchmark: Any) -> None:
    url = os.environ.get("NATS_URL", "").strip()
    if not url:
        pytest.skip("NATS_URL not set: run under .ci/run or bash .ci/services.sh run -- …")
    args = ["--records", "20000", "--rate", "2000", "--seconds", "2"] if benchmark.disabled else []
    out: dict[str, Any] = {}

    def run() -> None:
        r = subprocess.run(
            [sys.executable, str(TOOL), "--nats", url, "--json", *args],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        out.update(json.loads(r.stdout.strip().splitlines()[-1]))

    benchmark.group = "signals-live"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    assert out["fires"] > 0 and out["p50_ms"] <= out["p99_ms"]
