"""``ssmd notify run`` against real NATS and a local ntfy stand-in (ssmd.sim.ntfy).

Each test has its own signal ids and its own durable consumer, so the
shared SIGNALS stream and ``ssmd_notify`` bucket do not mix tests up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from helpers import async_wait_until
from ssmd.notify.config import parse_config
from ssmd.notify.service import NotifyService
from ssmd.sim.ntfy import Answer, NtfyServer

pytestmark = pytest.mark.integration

S = 1_000_000_000  # ns


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[Any]:
    import nats

    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import stream_specs

    nc = await nats.connect(nats_url)
    ctx = nc.jetstream()
    await ensure_streams(ctx, [s for s in stream_specs() if s.name in ("SIGNALS", "DEADLETTER")])
    yield ctx
    await nc.close()


@pytest.fixture
async def ntfy() -> AsyncIterator[NtfyServer]:
    async with NtfyServer() as server:
        yield server


def _fire(sig: str, inst: str, venue: str, rx: int, **payload: Any) -> dict[str, Any]:
    return {
        "signal": sig,
        "instrument": inst,
        "venue": venue,
        "ts": rx - 1000,
        "rx": rx,
        "source_seq": rx // S,
        "payload": payload,
    }


async def _publish(js: Any, fire: dict[str, Any]) -> None:
    token = fire["instrument"].replace("/", "_").replace(".", "_")
    await js.publish(
        f"signals.{fire['signal']}.{token}",
        orjson.dumps(fire),
        headers={"Nats-Msg-Id": f"{fire['signal']}:{fire['venue']}:{token}:{fire['rx']}"},
    )


class Running:
    def __init__(self, service: NotifyService) -> None:
        self.service = service
        self.stop = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> NotifyService:
        self.task = asyncio.create_task(self.service.run(self.stop))
        await asyncio.wait_for(self.service.started.wait(), 20)
        return self.service

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)


async def _settled(js: Any, durable: str) -> bool:
    info = await js.consumer_info("SIGNALS", durable)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def test_fires_reach_ntfy_as_json_with_the_rules_applied(
    js: Any, nats_url: str, ntfy: NtfyServer
) -> None:
    sig = "t" + uuid.uuid4().hex[:8]
    cfg = parse_config(
        {
            "destinations": [
                {
                    "name": "big",
                    "server": ntfy.url,
                    "topic": "alerts",
                    "token_env": "NTFY_TOKEN",
                    "priority": "high",
                    "tags": ["moneybag", "chart_with_upwards_trend"],
                    "signals": [sig],
                    "title": "Überlauf ⚡ {instrument}",
                    "message": "{venue}: ${payload.dollar_volume} at {time}",
                    "match": [{"field": "payload.dollar_volume", "op": "gte", "value": 1_000_000}],
                },
                {
                    "name": "kalshi",
                    "server": ntfy.url,
                    "topic": "kalshi-only",
                    "signals": [sig],
                    "match": [
                        {"field": "venue", "op": "eq", "value": "kalshi"},
                        {"field": "instrument", "op": "regex", "value": "^KXBTC"},
                    ],
                },
            ]
        },
        {"NTFY_TOKEN": "tk_secret"},
    )
    durable = "n" + uuid.uuid4().hex[:8]
    async with Running(NotifyService(cfg, nats_url, durable=durable)) as svc:
        t0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z
        await _publish(js, _fire(sig, "KXBTCD-26JAN01-T99999", "kalshi", t0, dollar_volume=2e6))
        await _publish(js, _fire(sig, "BTC/USD", "kraken", t0 + S, dollar_volume=5e5))
        await _publish(js, _fire(sig, "BTC/USD", "kraken", t0 + 2 * S, dollar_volume=3_000_000.5))
        await ntfy.wait_for(3, 20)
        await async_wait_until(lambda: _settled(js, durable), timeout=20)
        assert svc.stats.unmatched == 1 and svc.stats.fires == 3
    assert len(ntfy.messages) == 3
    assert all(r.method == "POST" and r.path == "/" for r in ntfy.requests)
    big = [r for r in ntfy.requests if r.json()["topic"] == "alerts"]
    assert [r.json() for r in big] == [
        {
            "topic": "alerts",
            "title": "Überlauf ⚡ KXBTCD-26JAN01-T99999",
            "message": "kalshi: $2000000 at 2025-12-31T23:59:59Z",
            "priority": 4,
            "tags": ["moneybag", "chart_with_upwards_trend"],
        },
        {
            "topic": "alerts",
            "title": "Überlauf ⚡ BTC/USD",
            "message": "kraken: $3000000.5 at 2026-01-01T00:00:01Z",
            "priority": 4,
            "tags": ["moneybag", "chart_with_upwards_trend"],
        },
    ]
    assert {r.headers["authorization"] for r in big} == {"Bearer tk_secret"}
    assert all(r.headers["content-type"] == "application/json" for r in ntfy.requests)
    (k,) = [r for r in ntfy.requests if r.json()["topic"] == "kalshi-only"]
    assert "authorization" not in k.headers
    assert k.json()["title"] == "" + sig + ": KXBTCD-26JAN01-T99999"


async def test_429_5xx_and_timeouts_are_retried_and_sent_once(
    js: Any, nats_url: str, ntfy: NtfyServer
) -> None:
    sig = "t" + uuid.uuid4().hex[:8]
    cfg = parse_config(
        {
            "retry": {"backoff": "0.1s", "backoff_max": "0.2s", "timeout": "1s"},
            "destinations": [{"server": ntfy.url, "topic": "t", "signals": [sig]}],
        },
        {},
    )
    ntfy.script(
        Answer(429, {"Retry-After": "2"}),
        Answer(503),
        Answer(delay=3.0),  # longer than the 1 s the client waits
        Answer(502),
    )
    durable = "n" + uuid.uuid4().hex[:8]
    async with Running(NotifyService(cfg, nats_url, durable=durable)) as svc:
        await _publish(js, _fire(sig, "PF_XBTUSD", "kraken-futures", 10 * S, x=1))
        await ntfy.wait_for(1, 30)
        await async_wait_until(lambda: _settled(js, durable), timeout=20)
        assert svc.stats.retries["d1"] == 4 and svc.stats.sent["d1"] == 1
    reqs = ntfy.requests
    assert [r.status for r in reqs] == [429, 503, 0, 502, 200]
    assert [r.answered for r in reqs] == [True, True, False, True, True]
    assert reqs[1].at - reqs[0].at >= 1.9, "Retry-After: 2 was not honoured"
    assert len(ntfy.messages) == 1
    assert len({r.body for r in reqs}) == 1  # the same message every time


async def test_failures_end_in_the_dead_letter_subject_and_are_acknowledged(
    js: Any, nats_url: str, ntfy: NtfyServer
) -> None:
    from nats.js.api import ConsumerConfig, DeliverPolicy

    sig = "t" + uuid.uuid4().hex[:8]
    cfg = parse_config(
        {
            "retry": {"backoff": "0.05s", "backoff_max": "0.1s", "max_attempts": 3},
            "destinations": [{"name": "x", "server": ntfy.url, "topic": "t", "signals": [sig]}],
        },
        {},
    )
    dead = await js.pull_subscribe(
        "deadletter.notify",
        stream="DEADLETTER",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )
    ntfy.script(Answer(500), Answer(500), Answer(500), Answer(403))
    durable = "n" + uuid.uuid4().hex[:8]
    async with Running(NotifyService(cfg, nats_url, durable=durable)) as svc:
        await _publish(js, _fire(sig, "A", "polymarket", 20 * S))
        await _publish(js, _fire(sig, "B", "polymarket", 21 * S))
        await _publish(js, b"not json" and _fire(sig, "C", "polymarket", 22 * S))
        await ntfy.wait_for(1, 20)  # C goes through
        await async_wait_until(lambda: _settled(js, durable), timeout=20)
        assert svc.stats.deadletters["x"] == 2 and svc.stats.sent["x"] == 1
    got = [orjson.loads(m.data) for m in await dead.fetch(2, timeout=5)]
    assert [(g["reason"][:8], g["attempts"], g["destination"]) for g in got] == [
        ("HTTP 500", 3, "x"),
        ("HTTP 403", 1, "x"),
    ]
    assert [orjson.loads(g["fire"])["instrument"] for g in got] == ["A", "B"]
    assert [r.status for r in ntfy.requests] == [500, 500, 500, 403, 200]


async def test_unreadable_fires_are_dead_letters_not_crashes(
    js: Any, nats_url: str, ntfy: NtfyServer
) -> None:
    sig = "t" + uuid.uuid4().hex[:8]
    cfg = parse_config({"destinations": [{"server": ntfy.url, "topic": "t"}]}, {})
    durable = "n" + uuid.uuid4().hex[:8]
    async with Running(NotifyService(cfg, nats_url, durable=durable)) as svc:
        await js.publish(f"signals.{sig}.X", b"{not json")
        await js.publish(f"signals.{sig}.Y", b'{"signal": 1}')
        await _publish(js, _fire(sig, "Z", "kalshi", 5 * S))
        await ntfy.wait_for(1, 20)
        await async_wait_until(lambda: _settled(js, durable), timeout=20)
        assert svc.stats.unreadable == 2 and svc.stats.deadletters["-"] == 2
    assert [m["title"] for m in ntfy.messages] == [f"{sig}: Z"]


async def test_cooldown_per_destination_and_instrument_survives_a_restart(
    js: Any, nats_url: str, ntfy: NtfyServer
) -> None:
    sig = "t" + uuid.uuid4().hex[:8]
    cfg = parse_config(
        {
            "destinations": [
                {"name": "slow", "server": ntfy.url, "topic": "slow", "cooldown": "60s"},
                {"name": "all", "server": ntfy.url, "topic": "all"},
            ]
        },
        {},
    )
    for d in cfg.destinations:
        object.__setattr__(d, "signals", (sig,))
    durable = "n" + uuid.uuid4().hex[:8]
    async with Running(NotifyService(cfg, nats_url, durable=durable)) as svc:
        for inst, at in (("X", 0), ("X", 10), ("Y", 10), ("X", 59), ("X", 70)):
            await _publish(js, _fire(sig, inst, "kalshi", (1000 + at) * S))
        await ntfy.wait_for(5 + 3, 20)
        await async_wait_until(lambda: _settled(js, durable), timeout=20)
        assert svc.stats.suppressed["slow"] == 2
    async with Running(NotifyService(cfg, nats_url, durable=durable)) as svc:
        # 75 s: within 60 s of the X sent at 70 s, known only from the bucket
        await _publish(js, _fire(sig, "X", "kalshi", 1075 * S))
        await _publish(js, _fire(sig, "Y", "kalshi", 1080 * S))
        await ntfy.wait_for(8 + 3, 20)
        await async_wait_until(lambda: _settled(js, durable), timeout=20)
        assert svc.stats.suppressed["slow"] == 1
    slow = [m["title"].split(": ")[1] for m in ntfy.messages if m["topic"] == "slow"]
    assert slow == ["X", "Y", "X", "Y"]  # X@0, Y@10, X@70, Y@80
    assert len([m for m in ntfy.messages if m["topic"] == "all"]) == 7


@pytest.mark.slow
async def test_a_destination_down_for_a_minute_and_a_kill_lose_nothing_and_send_nothing_twice(
    js: Any, nats_url: str, tmp_path: Path
) -> None:
    """Destination ``up`` accepts at once; ``down`` refuses connections for 60 s.
    The notifier is killed (SIGKILL) in the middle of it and started again."""
    sig = "t" + uuid.uuid4().hex[:8]
    up, down = NtfyServer(), NtfyServer()
    await up.start()
    await down.start()
    await down.stop()  # the port is known, and closed
    conf = tmp_path / "notify.toml"
    conf.write_text(
        f'[retry]\nbackoff = "0.5s"\nbackoff_max = "4s"\nmax_attempts = 100\n'
        f'[[destinations]]\nname = "up"\nserver = "{up.url}"\ntopic = "u"\nsignals = ["{sig}"]\n'
        f'[[destinations]]\nname = "down"\nserver = "{down.url}"\ntopic = "d"\n'
        f'signals = ["{sig}"]\n'
    )
    durable = "n" + uuid.uuid4().hex[:8]
    cmd = [sys.executable, "-m", "ssmd", "notify", "run", "--destinations", str(conf)]
    cmd += ["--consumer", durable, "--nats", nats_url, "--log-level", "error", "--json"]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)

    proc = start()
    try:
        await async_wait_until(lambda: _consumer(js, durable), timeout=30)
        down_since = time.monotonic()
        for i in range(10):
            await _publish(js, _fire(sig, f"I{i}", "kraken", (2000 + i) * S))
        await up.wait_for(1, 20)  # the first fire reached `up`; `down` holds the rest back
        await asyncio.sleep(15)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        proc = start()
        for i in range(10, 20):
            await _publish(js, _fire(sig, f"I{i}", "kraken", (2000 + i) * S))
        await asyncio.sleep(max(0.0, 60 - (time.monotonic() - down_since)))
        await down.start()
        await down.wait_for(20, 90)
        await up.wait_for(20, 30)
        await async_wait_until(lambda: _settled(js, durable), timeout=30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()[-2000:]
        stats = orjson.loads(out)
        assert stats["already_sent"].get("up", 0) >= 1  # the killed run's send was not repeated
    finally:
        if proc.poll() is None:
            proc.kill()
        await up.stop()
        await down.stop()
    want = [f"I{i}" for i in range(20)]
    assert [m["title"].split(": ")[1] for m in up.messages] == want
    assert [m["title"].split(": ")[1] for m in down.messages] == want


async def _consumer(js: Any, durable: str) -> bool:
    try:
        await js.consumer_info("SIGNALS", durable)
        return True
    except Exception:
        return False
