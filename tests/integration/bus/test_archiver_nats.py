"""The archiver on a real nats-server: kill -9 and restart, aged-out gaps, status."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from helpers import async_wait_until
from ssmd.archive import iter_lines, list_files
from ssmd.bus.nats import connect, ensure_streams
from ssmd.bus.service import run_archiver
from ssmd.bus.streams import spec_for_venue, stream_specs
from ssmd.runtime.shutdown import StopSignal

pytestmark = pytest.mark.integration


def _body(i: int, lines: int = 1) -> bytes:
    return b"".join(
        b'{"rx":%d,"conn":"c","subj":"x.kraken.json.trade.A","msg":{"i":%d,"j":%d}}\n'
        % (time.time_ns(), i, j)
        for j in range(lines)
    )


async def _publish(js: object, env: str, start: int, n: int) -> None:
    subject = f"{env}.kraken.json.trade.BTC_USD"
    futs = [
        await js.publish_async(  # type: ignore[attr-defined]
            subject, _body(i, 1 + i % 3), headers={"Nats-Msg-Id": f"t:{i}.0"}
        )
        for i in range(start, start + n)
    ]
    await asyncio.gather(*futs)


def _stream_seqs(root: Path) -> list[int]:
    out = []
    for line in iter_lines(root, "kraken"):
        seq = orjson.loads(line).get("seq")
        if seq is None:
            continue
        if isinstance(seq, int):
            out.append(seq)
        elif seq[1] == 0:
            out.append(seq[0])
    return out


async def test_kill_9_then_restart_archives_every_message_once(
    nats_url: str, bus_env: str, tmp_path: Path
) -> None:
    nc = await connect(nats_url)
    js = nc.jetstream()
    spec = spec_for_venue("kraken", stream_specs(bus_env))
    await ensure_streams(js, [spec])
    env = {**os.environ, "NATS_URL": nats_url, "SSMD_ENV": bus_env}
    cmd = [
        sys.executable,
        "-m",
        "ssmd",
        "archive",
        "run",
        "--venue",
        "kraken",
        "--dir",
        str(tmp_path),
    ]
    fast = ["--flush-interval", "0.05", "--batch", "100"]
    try:
        await _publish(js, bus_env, 0, 2000)
        proc = subprocess.Popen([*cmd, *fast], env=env, stderr=subprocess.PIPE)
        feeding = asyncio.Event()
        feeding.set()

        async def feed() -> int:
            i = 2000
            while feeding.is_set():  # until the kill: the archiver never runs out
                await _publish(js, bus_env, i, 500)
                i += 500
            return i

        feeder = asyncio.create_task(feed())

        async def acked() -> int:
            try:
                ci = await js.consumer_info(spec.name, "archiver")
            except Exception:
                return 0
            return int(ci.ack_floor.stream_seq)

        floor = 0
        deadline = time.monotonic() + 30
        while floor < 3000 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            floor = await acked()
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=10)
        feeding.clear()
        n = await feeder
        await _publish(js, bus_env, n, 1000)  # and more that the killed run never saw
        floor = await acked()  # what the killed run had acknowledged, for good
        last = (await js.stream_info(spec.name)).state.last_seq
        assert 3000 <= floor < last, f"the kill did not land mid-run: {err.decode()[-3000:]}"
        parts = list_files(tmp_path, "kraken", include_parts=True)
        assert any(p.endswith(".part") for p in parts)

        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while await acked() < last and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        await nc.close()
    seqs = _stream_seqs(tmp_path)
    assert len(seqs) == len(set(seqs)) == last  # every message exactly once
    assert sorted(seqs) == list(range(1, last + 1))
    assert not [
        p for p in list_files(tmp_path, "kraken", include_parts=True) if p.endswith(".part")
    ]


async def test_messages_aged_out_before_archiving_are_recorded_as_a_gap(
    nats_url: str, bus_env: str, tmp_path: Path
) -> None:
    name = f"{bus_env.upper()}_KRAKEN"
    # stream limits come from the environment through the settings (SSMD_STREAM_*)
    specs = stream_specs(bus_env, environ={f"SSMD_STREAM_{name}_MAX_MSGS": "10"})
    nc = await connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, [spec_for_venue("kraken", specs)])

    async def archive_once() -> None:
        stop = StopSignal()
        task = asyncio.create_task(
            run_archiver(
                ["kraken"],
                tmp_path,
                env=bus_env,
                url=nats_url,
                stop=stop,
                signals=False,
                flush_interval=0.05,
                specs=specs,
            )
        )
        last = (await js.stream_info(name)).state.last_seq

        async def done() -> bool:
            if task.done():
                return True
            try:
                ci = await js.consumer_info(name, "archiver")
            except Exception:
                return False
            return bool(ci.ack_floor.stream_seq >= last)

        await async_wait_until(done, timeout=20)
        stop.set()
        await task

    try:
        await _publish(js, bus_env, 0, 5)
        await archive_once()
        await _publish(js, bus_env, 5, 30)  # 6..35: 6..25 fall out of the 10-message stream
        await archive_once()
    finally:
        await nc.close()
    lines = [orjson.loads(x) for x in iter_lines(tmp_path, "kraken")]
    gaps = [x["msg"] for x in lines if x["subj"] == f"{bus_env}.kraken.json.status.archiver"]
    assert gaps == [
        {"ssmd": "gap", "reason": "stream", "stream": name, "from": 6, "to": 25, "missing": 20}
    ]
    assert _stream_seqs(tmp_path) == [1, 2, 3, 4, 5, *range(26, 36)]


def test_archive_status_and_service_errors(nats_url: str, bus_env: str, tmp_path: Path) -> None:
    env = {**os.environ, "NATS_URL": nats_url, "SSMD_ENV": bus_env}
    r = subprocess.run(
        [sys.executable, "-m", "ssmd", "archive", "status", "--dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out = orjson.loads(r.stdout)
    assert out["nats_error"] is None
    assert [v["venue"] for v in out["venues"]] == [
        "kalshi",
        "kraken",
        "kraken-futures",
        "polymarket",
    ]
    env.pop("NATS_URL")
    r = subprocess.run(
        [sys.executable, "-m", "ssmd", "archive", "run", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2 and r.stderr.startswith("ssmd: error: ssmd archive run reads NATS")
    r = subprocess.run(
        [sys.executable, "-m", "ssmd", "archive", "run", "--venue", "binance", "--nats", nats_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2 and "'binance' is not one of" in r.stderr


async def test_the_archiver_inbox_skips_nats_py_messages_and_others_keep_them(
    nats_url: str, bus_env: str
) -> None:
    """The fast path is on with the installed nats-py; other subscriptions are untouched."""
    from ssmd.bus.nats import JetStreamSource

    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        spec = spec_for_venue("kraken", stream_specs(bus_env))
        await ensure_streams(js, [spec])
        await _publish(js, bus_env, 0, 50)
        src = JetStreamSource(nc, spec.name, "fast", batch=16)
        await src.start()
        assert src.direct, "nats-py's message dispatch changed: the archiver's fast path is off"
        other: list[bytes] = []

        async def plain(msg: object) -> None:
            other.append(msg.data)  # type: ignore[attr-defined]

        sub = await nc.subscribe("plain.subject", cb=plain)
        got: list[tuple[int, bytes]] = []
        for _ in range(50):
            got += await src.fetch(16, 1.0)
            if len(got) >= 50:
                break
        assert [s for s, _ in got] == list(range(1, 51))
        assert b'"i":7,' in got[7][1] and got[7][1].count(b"\n") == 1 + 7 % 3
        await src.ack_upto(50)
        info = await js.consumer_info(spec.name, "fast")
        assert info.ack_floor.stream_seq == 50 and info.num_pending == 0
        await nc.publish("plain.subject", b"hello")
        await async_wait_until(lambda: other == [b"hello"], timeout=5)
        await sub.unsubscribe()
        await src.close()
    finally:
        await nc.close()


async def test_sighup_stops_the_archiver_as_sigterm_does(
    nats_url: str, bus_env: str, tmp_path: Path
) -> None:
    """A hang-up (the terminal closed) finalizes the files and acknowledges what is durable."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    spec = spec_for_venue("kraken", stream_specs(bus_env))
    await ensure_streams(js, [spec])
    env = {**os.environ, "NATS_URL": nats_url, "SSMD_ENV": bus_env}
    cmd = [sys.executable, "-m", "ssmd", "archive", "run", "--venue", "kraken"]
    cmd += ["--dir", str(tmp_path), "--flush-interval", "0.05"]
    try:
        await _publish(js, bus_env, 0, 300)
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        acked = 0
        while acked < 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            try:
                acked = int((await js.consumer_info(spec.name, "archiver")).ack_floor.stream_seq)
            except Exception:
                acked = 0
        assert acked == 300
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        await nc.close()
    assert sorted(_stream_seqs(tmp_path)) == list(range(1, 301))
    parts = list_files(tmp_path, "kraken", include_parts=True)
    assert parts and not [p for p in parts if p.endswith(".part")]
