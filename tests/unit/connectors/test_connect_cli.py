"""``ssmd connect`` as a user runs it: one-line errors, SIGTERM and --duration stop cleanly."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from capture_helpers import ssmd_events
from helpers import async_wait_until, free_port
from sim_client import MakeSim
from ssmd.archive import iter_lines, list_files


def ssmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


async def connect_kraken(
    ws_url: str,
    rest_url: str,
    out: Path,
    *extra: str,
    symbols: str = "BTC/USD,ETH/USD",
    nats: str = "",
) -> asyncio.subprocess.Process:
    """``ssmd connect kraken`` as a subprocess, pipes for its output, no PostgreSQL
    (discovery from ``rest_url``) and the bus at ``nats`` (none: the embedded archive)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "ssmd", "connect", "kraken", "--symbols", symbols),
        *("--ws-url", ws_url, "--rest-url", rest_url, "--dir", str(out), *extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NATS_URL": nats, "DATABASE_URL": ""},
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
async def test_a_stop_signal_flushes_and_finalizes_the_archive(
    tmp_path: Path, sig: signal.Signals, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken", rate=2000.0)
    # the embedded archive, and discovery from the simulator's REST
    proc = await connect_kraken(sim.ws_url, sim.rest_url, tmp_path, "--writer", "cli")

    def parts() -> list[str]:
        return list_files(tmp_path, "kraken", include_parts=True)

    await async_wait_until(parts, timeout=30, message="archive file opened")
    await async_wait_until(lambda: sim.stats()["messages"].get("trade", 0) > 100, timeout=20)
    proc.send_signal(sig)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert "ssmd connect kraken:" in out.decode()
    files = list_files(tmp_path, "kraken", include_parts=True)
    assert files and not any(f.endswith(".part") for f in files)
    lines = list(iter_lines(tmp_path, "kraken"))
    assert len(lines) > 100
    last = [orjson.loads(x) for x in lines if b'"ssmd":' in x][-1]
    assert ssmd_events([last]) == ["disconnect"] and last["msg"]["reason"] == "shutdown"
    assert list((tmp_path / "kraken").glob("*/manifest.json"))


@pytest.mark.parametrize("case", ["refused", "unresolvable"])
async def test_a_connector_that_never_connects_exits_non_zero(
    tmp_path: Path, make_sim: MakeSim, case: str
) -> None:
    """Connection refused, or a host name that does not resolve (``.invalid`` never does)."""
    if case == "refused":
        closed = free_port()
        ws_url, needle = f"ws://127.0.0.1:{closed}/", str(closed)
    else:
        ws_url, needle = "ws://no-such-host.invalid/", "no-such-host.invalid"
    sim = await make_sim("kraken", rate=10.0)  # discovery works, the WebSocket does not
    proc = await connect_kraken(
        ws_url, sim.rest_url, tmp_path, "--duration", "2s", symbols="BTC/USD"
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    errors = [x for x in err.decode().splitlines() if x.startswith("ssmd: error:")]
    assert proc.returncode == 1, err.decode()
    assert len(errors) == 1 and "never connected" in errors[0] and needle in errors[0], errors
    assert "Traceback" not in err.decode()
    assert "0 messages" in out.decode()  # the summary is still printed


def _latency(text: str, stage: str) -> dict[str, float]:
    """The ``ssmd_pipeline_latency_seconds`` samples of kraken's ``stage`` in a /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name != "ssmd_pipeline_latency_seconds":
            continue
        for sample in fam.samples:
            if sample.labels.get("venue") == "kraken" and sample.labels.get("stage") == stage:
                le = sample.labels.get("le")
                out[sample.name + (f"@{le}" if le else "")] = sample.value
    return out


@pytest.mark.parametrize(("nats", "stage"), [("", "durable"), ("memory://", "acked")])
async def test_metrics_endpoint_shows_the_pipeline_latency_of_a_live_capture(
    tmp_path: Path, make_sim: MakeSim, nats: str, stage: str
) -> None:
    """``ssmd connect --metrics-port`` as deployed: /metrics over HTTP fills
    ``ssmd_pipeline_latency_seconds`` (archive fsync without a bus, bus acknowledgement with
    one) while data flows."""
    import httpx

    sim = await make_sim("kraken", rate=2000.0)
    port = free_port()
    proc = await connect_kraken(
        sim.ws_url,
        sim.rest_url,
        tmp_path,
        *("--metrics-port", str(port), "--duration", "60"),
        nats=nats,
    )
    try:
        async with httpx.AsyncClient() as client:

            async def filled() -> dict[str, float]:
                try:
                    r = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2.0)
                except httpx.TransportError:
                    return {}  # not serving yet
                got = _latency(r.text, stage)
                return got if got.get("ssmd_pipeline_latency_seconds_count", 0) >= 100 else {}

            got = await async_wait_until(filled, timeout=30, message=f"{stage} latency exported")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    count = got["ssmd_pipeline_latency_seconds_count"]
    buckets = sorted(
        (float(k.partition("@")[2]), v)
        for k, v in got.items()
        if k.startswith("ssmd_pipeline_latency_seconds_bucket@")
    )
    assert buckets[-1] == (float("inf"), count)  # every line lands in a bucket
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))  # cumulative
    assert 0 < got["ssmd_pipeline_latency_seconds_sum"] < count * 60  # a plausible time per line


def test_bad_urls_and_ports_are_one_line_errors() -> None:
    for args, message in (
        (["connect", "kraken", "--all", "--ws-url", "ws://127.0.0.1:99999/"], "out of range"),
        (["connect", "kraken", "--all", "--ws-url", "http://x/"], "must be ws:// or wss://"),
        (["connect", "kraken", "--all", "--metrics-port", "70000"], "--metrics-port"),
        (["connect", "kraken", "--all", "--nats", "nats://h:port"], "bad --nats"),
        (["connect", "kraken", "--all", "--duration", "soon"], "bad duration"),
    ):
        r = ssmd(*args)
        assert r.returncode == 2, (args, r.stderr)
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ssmd: error:") and message in err[0], err
