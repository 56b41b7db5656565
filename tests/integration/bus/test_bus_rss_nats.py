"""Peak RSS of ``ssmd connect --nats`` at full speed, an archiver consuming: a regression guard.

The simulator and the archiver run in this process; ``ssmd connect`` publishes
to the shared nats-server for a few seconds as a child process, and its peak
RSS comes from ``wait4``. It measures 56-58 MiB on the development VM
(docs/connect.md, memory); before its buffers were bounded, 77-155 MiB
(the peak depended on how far the bus fell behind), so the limit sits
between the two: 80 MiB.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from helpers import run_measured
from ssmd.bus.archiver import VenueArchiver
from ssmd.bus.nats import JetStreamSource, connect, ensure_streams
from ssmd.bus.streams import spec_for_venue, stream_specs, venue_stream
from ssmd.sim import start_sim

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LIMIT_MIB = 80


async def test_connect_to_jetstream_peak_rss_at_full_speed(
    tmp_path: Path, nats_url: str, bus_env: str
) -> None:
    sim = await start_sim("kraken", rate=float("inf"))
    nc = await connect(nats_url)
    await ensure_streams(nc.jetstream(), [spec_for_venue("kraken", stream_specs(bus_env))])
    archiver = VenueArchiver(
        JetStreamSource(nc, venue_stream("kraken", bus_env)), tmp_path / "a", "kraken", env=bus_env
    )
    stop = asyncio.Event()
    task = asyncio.create_task(archiver.run(stop))
    out, err = tmp_path / "out.json", tmp_path / "err.txt"
    try:
        report = await run_measured(
            [
                sys.executable, "-m", "ssmd", "connect", "kraken", "--all",
                "--ws-url", sim.ws_url, "--rest-url", sim.rest_url,
                "--nats", nats_url, "--duration", "4", "--log-level", "warning", "--json",
            ],
            str(out),
            str(err),
            # the secmaster is not what this measures
            env={**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "SSMD_ENV": bus_env},
        )  # fmt: skip
    finally:
        stop.set()
        await task
        await nc.close()
        await sim.stop()
    assert report["exit"] == 0, err.read_text()[-2000:]
    summary = json.loads(out.read_text())
    assert summary["messages"] >= 20_000, summary  # it ran at speed
    bus = summary["bus"]
    assert bus["dropped_lines"] == 0 and bus["lines_acked"] == bus["lines_in"], bus
    peak_mib = report["maxrss_kib"] / 1024
    assert peak_mib < LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB >= {LIMIT_MIB} MiB: {summary}"
