"""Pipeline latency per message: ``tools/bench_latency.py`` under pytest-benchmark.

Receive time to fsynced in the archive, and to JetStream's acknowledgement,
for ssmd's connector, next to a plain nats-py publisher on the same
simulator and server, at 1 k, 10 k and 100 k messages/s and at full speed
(10 s each, timed run); the smoke run (``--benchmark-disable``) measures
1 000 msg/s for 1 s. ``extra_info`` holds one row per rate and path (p50,
p99, max in ms, received msg/s, peak RSS). Nothing is asserted about the
figures: they are reported, and docs/connect.md says what they were.

Needs ``NATS_URL`` (``bash .ci/services.sh run -- …``); timed run:
``python -m pytest benches/python/bench_latency.py --benchmark-only``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_latency.py"


def test_pipeline_latency(benchmark: Any) -> None:
    url = os.environ.get("NATS_URL", "").strip()
    if not url:
        pytest.skip("NATS_URL not set: run under .ci/run or bash .ci/services.sh run -- …")
    if benchmark.disabled:
        args = ["--rates", "1000", "--seconds", "1", "--warmup", "0.5"]
    else:
        args = ["--rates", "1000,10000,100000,inf", "--seconds", "10", "--warmup", "2"]
    rows: list[dict[str, Any]] = []

    def run() -> None:
        out = subprocess.run(
            [sys.executable, str(TOOL), *args, "--nats", url, "--json"],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        rows.extend(json.loads(out.stdout.strip().splitlines()[-1]))

    benchmark.group = "pipeline latency"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    paths = {r["path"] for r in rows}
    assert len(paths) == 3, paths
    # every path measured lines, each within its own run
    assert all(r["lines"] > 0 and r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] for r in rows), rows
