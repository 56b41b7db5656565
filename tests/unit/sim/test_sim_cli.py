"""``ssmd sim`` as a user runs it: URLs, data, stats lines, clean stop, one-line errors."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest

from helpers import async_wait_until
from sim_client import connect, http_get


def ssmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args], capture_output=True, text=True, timeout=60
    )


async def test_serves_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ssmd",
        "sim",
        "kraken-futures",
        "--rate",
        "1000",
        "--stats-every",
        "0.2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ws = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
        rest = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode().split()
        assert ws[:4] == ["ssmd", "sim", "kraken-futures:", "ws"] and rest[3] == "rest"
        status, _, body = await http_get(f"{rest[4]}/instruments")
        assert status == 200 and body["result"] == "success"
        c = await connect(ws[4])
        c.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})
        await async_wait_until(lambda: len(c.frames) > 50)
        line = (await asyncio.wait_for(proc.stderr.readline(), 5)).decode()
        assert line.startswith("kraken-futures: conns=")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0
        assert "(stopped)" in err.decode() and "Traceback" not in err.decode()
        await asyncio.wait_for(c.disconnected.wait(), 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_duration_stops_by_itself() -> None:
    r = ssmd("sim", "polymarket", "--duration", "0.5", "--stats-every", "0")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("ssmd sim polymarket: ws ws://127.0.0.1:")
    assert lines[0].endswith("/ws/market")
    assert any(" clob " in x for x in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sim", "binance"], "is not one of"),
        (["sim", "kraken", "--drop", "1.5"], "--drop"),
        (["sim", "kraken", "--rate", "fast"], "--rate must be a number"),
        (["sim", "kraken", "--kalshi-public-key", "/nonexistent"], "are for the kalshi"),
        (["sim", "kalshi", "--kalshi-public-key", "/nonexistent/key.pem"], "cannot read"),
        (["sim", "kraken", "--instruments", "0"], "must be 1 to 100,000"),
        (["sim", "kraken", "--instruments", "10000000"], "must be 1 to 100,000"),
        (["sim", "kraken", "--port", "70000"], "--port"),
    ],
)
def test_bad_flags_are_one_line_errors(args: list[str], message: str) -> None:
    r = ssmd(*args)
    assert r.returncode == 2
    assert r.stderr.startswith("ssmd: error: ") and message in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_busy_port_is_one_line_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = ssmd("sim", "kraken", "--port", str(port), "--duration", "1")
    assert r.returncode == 2 and r.stderr.startswith("ssmd: error: cannot listen")
