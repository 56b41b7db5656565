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

ssmd's capture runs in a process of its own (``connect_capture.py``), so
``extra_info`` has its ``msg_per_s``, ``msg_per_cpu_s`` and ``peak_rss_mb``
(the baseline runs in this process: rates only).

Timed run: ``python -m pytest benches/python/bench_connect.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from baseline_connector import run_plain

TIMED = 300_000
SMOKE = 3_000


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
        # ssmd in a process of its own: the figures, and the peak RSS, are the capture's
        script = Path(__file__).with_name("connect_capture.py")
        ws, rest = settings["ws_url"], settings["rest_url"]
        cmd = [sys.executable, str(script), venue, ws, rest, str(root), "--target", str(target)]
        if "private_key_path" in settings:
            cmd += ["--kalshi-key", settings["private_key_path"]]
            cmd += ["--kalshi-api-key", settings["api_key"]]
        child = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(child.communicate(), 300)
        if child.returncode != 0:
            raise RuntimeError(f"capture failed: {err.decode()[-2000:]}")
        r = json.loads(out.decode().strip().splitlines()[-1])
        return {
            "msg_per_s": float(r["msg_per_s"]),
            "msg_per_cpu_s": float(r["msg_per_cpu_s"]),
            "peak_rss_mb": float(r["peak_rss_mb"]),
        }
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
