"""Peak RSS of ``ssmd connect`` at full speed: a regression guard, not a benchmark.

The simulator runs in this process at full speed (as fast as the connector
reads); ``ssmd connect`` runs as a child process for a few seconds into the
embedded archive, and its peak resident set size comes from ``wait4``
(what ``/usr/bin/time`` reports) in a small process that starts it. It measures 55-65 MiB on the development
VM (docs/connect.md, memory); before its buffers were bounded it took
107-135 MiB. The limit is generous so that a busy machine does not fail it,
and tight enough to catch a return to 120 MiB and more.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from helpers import run_measured
from ssmd.sim import start_sim

LIMIT_MIB = 96


@pytest.mark.slow
async def test_connect_peak_rss_at_full_speed(tmp_path: Path) -> None:
    sim = await start_sim("kraken", rate=float("inf"))
    out, err = tmp_path / "out.json", tmp_path / "err.txt"
    try:
        report = await run_measured(
            [
                sys.executable, "-m", "ssmd", "connect", "kraken", "--all",
                "--ws-url", sim.ws_url, "--rest-url", sim.rest_url,
                "--dir", str(tmp_path / "archive"), "--duration", "4",
                "--log-level", "warning", "--json",
            ],
            str(out),
            str(err),
            # the embedded archive, whatever services the suite has in its environment
            env={**os.environ, "DATABASE_URL": "", "NATS_URL": ""},
        )  # fmt: skip
    finally:
        await sim.stop()
    assert report["exit"] == 0, err.read_text()[-2000:]
    summary = json.loads(out.read_text())
    # it ran at speed: a capture that received little would prove nothing
    assert summary["messages"] >= 20_000, summary
    peak_mib = report["maxrss_kib"] / 1024
    assert peak_mib < LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB >= {LIMIT_MIB} MiB: {summary}"
