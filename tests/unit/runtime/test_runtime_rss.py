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

import asyncio
import json
import sys
from pathlib import Path

import pytest

from ssmd.sim import start_sim

LIMIT_MIB = 96


#: runs the command, waits for it and reports its rusage: the child is forked from this
#: small process, not from pytest (``ru_maxrss`` counts the parent's RSS at the fork)
_WAIT4 = (
    "import json, os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "sys.stderr.write(json.dumps({'exit': os.waitstatus_to_exitcode(status),"
    " 'maxrss_kib': usage.ru_maxrss}) + '\\n')\n"
)


@pytest.mark.slow
async def test_connect_peak_rss_at_full_speed(tmp_path: Path) -> None:
    sim = await start_sim("kraken", rate=float("inf"))
    out, err = tmp_path / "out.json", tmp_path / "err.txt"
    try:
        with out.open("wb") as o, err.open("wb") as e:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _WAIT4,
                sys.executable, "-m", "ssmd", "connect", "kraken", "--all",
                "--ws-url", sim.ws_url, "--rest-url", sim.rest_url,
                "--dir", str(tmp_path / "archive"), "--duration", "4",
                "--log-level", "warning", "--json",
                stdout=o,
                stderr=e,
            )  # fmt: skip
            await proc.wait()  # the simulator is served by this loop meanwhile
    finally:
        await sim.stop()
    report = json.loads(err.read_text().strip().splitlines()[-1])
    assert proc.returncode == 0 and report["exit"] == 0, err.read_text()[-2000:]
    summary = json.loads(out.read_text())
    # it ran at speed: a capture that received little would prove nothing
    assert summary["messages"] >= 20_000, summary
    peak_mib = report["maxrss_kib"] / 1024
    assert peak_mib < LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB >= {LIMIT_MIB} MiB: {summary}"
