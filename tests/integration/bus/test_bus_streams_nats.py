"""Streams on a real nats-server: idempotent creation, updates, the operator CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import orjson
import pytest

from ssmd.bus.nats import connect, ensure_streams, stream_info
from ssmd.bus.streams import stream_specs

pytestmark = pytest.mark.integration


def _venue_specs(env: str, environ: dict[str, str] | None = None) -> list:
    return [s for s in stream_specs(env, environ=environ or {}) if s.name.startswith(env.upper())]


async def test_creation_is_idempotent_and_updates_changed_limits(
    nats_url: str, bus_env: str
) -> None:
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        specs = _venue_specs(bus_env)
        first = await ensure_streams(js, specs)
        assert {r["action"] for r in first} == {"created"} and len(first) == 5
        again = await ensure_streams(js, specs)
        assert {r["action"] for r in again} == {"unchanged"}
        info = await stream_info(js, f"{bus_env.upper()}_KRAKEN")
        assert info is not None
        assert info.config.subjects == [f"{bus_env}.kraken.>"]
        assert info.config.max_age == 48 * 3600 and info.config.duplicate_window == 120
        politics = await stream_info(js, f"{bus_env.upper()}_KALSHI_POLITICS")
        assert politics is not None and not politics.config.subjects
        assert politics.config.sources[0].filter_subject == f"{bus_env}.kalshi.politics.>"

        key = f"SSMD_STREAM_{bus_env.upper()}_KRAKEN_MAX_AGE"
        changed = _venue_specs(bus_env, {key: "1h"})
        results = {r["stream"]: r for r in await ensure_streams(js, changed)}
        kr = results[f"{bus_env.upper()}_KRAKEN"]
        assert kr["action"] == "updated" and "max_age" in kr["changes"][0]
        assert {r["action"] for n, r in results.items() if n != kr["stream"]} == {"unchanged"}
        info = await stream_info(js, f"{bus_env.upper()}_KRAKEN")
        assert info is not None and info.config.max_age == 3600
    finally:
        await nc.close()


async def test_a_resend_with_the_same_id_is_stored_once(nats_url: str, bus_env: str) -> None:
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, _venue_specs(bus_env))
        subject = f"{bus_env}.kraken.json.trade.BTC_USD"
        a = await js.publish(subject, b"x", headers={"Nats-Msg-Id": "conn-1:7.0"})
        b = await js.publish(subject, b"x", headers={"Nats-Msg-Id": "conn-1:7.0"})
        c = await js.publish(subject, b"y", headers={"Nats-Msg-Id": "conn-1:8.0"})
        assert (a.seq, b.seq, c.seq) == (1, 1, 2) and b.duplicate and not a.duplicate
    finally:
        await nc.close()


def _ssmd(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_streams_cli_create_ls_info(nats_url: str, bus_env: str) -> None:
    env = {"NATS_URL": nats_url, "SSMD_ENV": bus_env}
    name = f"{bus_env.upper()}_KRAKEN_FUTURES"
    r = _ssmd("streams", "create", name, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{name}: created"
    assert _ssmd("streams", "create", name, env=env).stdout.strip() == f"{name}: unchanged"
    r = _ssmd("streams", "ls", "--json", env=env)
    rows = {x["stream"]: x for x in orjson.loads(r.stdout)}
    assert rows[name]["exists"] and rows[name]["differences"] == []
    assert not rows[f"{bus_env.upper()}_KRAKEN"]["exists"]
    r = _ssmd("streams", "info", name, env=env)
    assert r.returncode == 0 and f"subjects   {bus_env}.kraken-futures.>" in r.stdout
    r = _ssmd("streams", "info", f"NOPE_{uuid.uuid4().hex[:6]}", env=env)
    assert r.returncode == 2 and r.stderr.startswith("ssmd: error: no stream")
    r = _ssmd("streams", "ls", env={"NATS_URL": "nats://127.0.0.1:1"})
    assert r.returncode == 1  # a server that cannot be reached, not a bad setting
    assert r.stderr.strip().startswith("ssmd: error: cannot reach NATS at nats://127.0.0.1:1")
