"""``ssmd connect`` as a user runs it: one-line errors, SIGTERM and --duration stop cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from capture_helpers import ssmd_events
from helpers import async_wait_until
from ssmd.archive import iter_lines, list_files
from ssmd.sim import start_sim


def ssmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["connect", "binance", "--all"], {}, "is not one of"),
        (["connect", "kraken"], {}, "say which instruments"),
        (["connect", "kraken", "--all", "--channels", "ohlc"], {}, "unknown channel"),
        (["connect", "kalshi", "--all"], {"KALSHI_API_KEY": ""}, "KALSHI_API_KEY is not set"),
        (
            ["connect", "kalshi", "--all"],
            {"KALSHI_API_KEY": "k", "KALSHI_PRIVATE_KEY_PATH": "/nonexistent.pem"},
            "cannot read private key",
        ),
    ],
)
def test_user_errors_are_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    r = ssmd(*args, env=env)
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if line.startswith("ssmd: error:")]
    assert len(err) == 1 and message in err[0], r.stderr
    assert "Traceback" not in r.stderr


async def test_sigterm_flushes_and_finalizes_the_archive(tmp_path: Path) -> None:
    sim = await start_sim("kraken", rate=2000.0)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ssmd",
            "connect",
            "kraken",
            "--symbols",
            "BTC/USD,ETH/USD",
            "--ws-url",
            sim.ws_url,
            "--rest-url",
            sim.rest_url,
            "--dir",
            str(tmp_path),
            "--writer",
            "cli",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # the embedded archive, and discovery from the simulator's REST
            env={**os.environ, "NATS_URL": "", "DATABASE_URL": ""},
        )

        def parts() -> list[str]:
            return list_files(tmp_path, "kraken", include_parts=True)

        await async_wait_until(parts, timeout=30, message="archive file opened")
        await async_wait_until(lambda: sim.stats()["messages"].get("trade", 0) > 100, timeout=20)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await sim.stop()
    assert proc.returncode == 0, err.decode()
    assert "ssmd connect kraken:" in out.decode()
    files = list_files(tmp_path, "kraken", include_parts=True)
    assert files and not any(f.endswith(".part") for f in files)
    lines = list(iter_lines(tmp_path, "kraken"))
    assert len(lines) > 100
    last = [orjson.loads(x) for x in lines if b'"ssmd":' in x][-1]
    assert ssmd_events([last]) == ["disconnect"] and last["msg"]["reason"] == "shutdown"
    assert list((tmp_path / "kraken").glob("*/manifest.json"))
