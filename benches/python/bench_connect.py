"""Connector throughput: one ``ssmd connect`` capture receiving from the simulator.

The simulator runs in its own process (``ssmd sim <venue> --rate max``); this
process runs the capture (picows → core → archive writer thread) on the
venue's whole default universe into a temporary archive until it has
received the target number of messages. A timed run receives 300,000
messages per venue; under ``--benchmark-disable`` (the smoke run) 3,000.
The baseline, measured in the same run against the same simulator, is the
plain Python connector of ``baseline_connector.py``: ``websockets`` +
stdlib ``json`` + ``gzip``. ``tools/bench_connect.py`` does the same with
RSS, churn and a picows variant of the baseline.

``extra_info``: ``msg_per_s`` and ``msg_per_cpu_s`` of this process.

Timed run: ``python -m pytest benches/python/bench_connect.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from baseline_connector import run_plain

from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.registry import create
from ssmd.runtime.capture import Capture, run_capture
from ssmd.runtime.shutdown import StopSignal
from ssmd.runtime.sink import ArchiveSink

TIMED = 300_000
SMOKE = 3_000


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _settings(info: dict[str, Any]) -> dict[str, Any]:
    """Connector settings from ``ssmd sim --json``: its addresses, and the Kalshi key it made."""
    settings: dict[str, Any] = {"ws_url": info["ws"], "rest_url": info["rest"]}
    env = info.get("env") or {}
    if env:  # the Kalshi simulator verifies signed upgrades with a key pair of its own
        settings.update(
            api_key=env["KALSHI_API_KEY"], private_key_path=env["KALSHI_PRIVATE_KEY_PATH"]
        )
    return settings


async def _measure(venue: str, impl: str, target: int, root: Path) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssmd", "sim", venue, "--rate", "max", "--stats-every", "0", "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        settings = _settings(info)
        if impl != "ssmd":
            r = await asyncio.wait_for(
                run_plain(venue, settings, root, client="websockets", target=target), 300
            )
            return {"msg_per_s": float(r["msg_per_s"]), "msg_per_cpu_s": float(r["msg_per_cpu_s"])}
        stop = StopSignal()
        marks: dict[str, float] = {}

        def started(cap: Capture) -> None:
            async def watch() -> None:
                while cap.totals().get("data", 0) < target // 10:
                    await asyncio.sleep(0.01)
                n0, marks["t0"], marks["c0"] = cap.totals()["data"], time.perf_counter(), _cpu()
                while cap.totals().get("data", 0) < n0 + target:
                    await asyncio.sleep(0.01)
                marks["n"] = cap.totals()["data"] - n0
                marks["t1"], marks["c1"] = time.perf_counter(), _cpu()
                stop.set("done")

            asyncio.get_running_loop().create_task(watch())

        await run_capture(
            create(venue, settings),
            InstrumentQuery(all=True),
            ArchiveSink(root, venue, "bench"),
            stop=stop,
            started=started,
            duration=120,
            with_metrics=False,
        )
        secs, cpu = marks["t1"] - marks["t0"], marks["c1"] - marks["c0"]
        return {"msg_per_s": marks["n"] / secs, "msg_per_cpu_s": marks["n"] / cpu if cpu else 0.0}
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize("impl", ["ssmd", "websockets-json-gzip"])
@pytest.mark.parametrize("venue", ["kalshi", "kraken", "kraken-futures", "polymarket"])
def test_connect_throughput(benchmark: Any, venue: str, impl: str, tmp_path: Path) -> None:
    target = SMOKE if benchmark.disabled else TIMED
    if impl != "ssmd":
        target //= 5  # the baseline is 5-7x slower: keep its run short
    result: dict[str, float] = {}
    benchmark.group = f"connect {venue}"

    def run() -> None:
        result.update(asyncio.run(_measure(venue, impl, target, tmp_path)))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v) for k, v in result.items()})
    benchmark.extra_info["messages"] = target
    assert result["msg_per_s"] > 0
