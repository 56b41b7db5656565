"""The notifier's destinations file: rules, templates, retries, secrets and one-line errors."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ssmd.errors import ConfigError
from ssmd.notify.config import Retry, Rule, load_config, parse_config, render
from ssmd.notify.ntfy import publish
from ssmd.sim.ntfy import Answer, NtfyServer

FIRE = {
    "signal": "volume-1m-5min",
    "instrument": "KXBTCD-26JAN01-T99999",
    "venue": "kalshi",
    "ts": 1_767_225_600_000_000_000,
    "rx": 1_767_225_600_100_000_000,
    "source_seq": 42,
    "payload": {"dollar_volume": 1_250_000.5, "trades": 17, "side": "yes", "tags": ["a", "b"]},
}


def _rule(field: str, op: str, value: Any) -> Rule:
    cfg = parse_config(
        {"destinations": [{"topic": "t", "match": [{"field": field, "op": op, "value": value}]}]},
        {},
    )
    (r,) = cfg.destinations[0].rules
    return r


@pytest.mark.parametrize(
    ("field", "op", "value", "holds"),
    [
        ("venue", "eq", "kalshi", True),
        ("venue", "eq", "kraken", False),
        ("venue", "ne", "kraken", True),
        ("source_seq", "eq", "42", True),  # numbers compare as numbers
        ("payload.dollar_volume", "gte", 1_250_000.5, True),
        ("payload.dollar_volume", "gt", 1_250_000.5, False),
        ("payload.dollar_volume", "gt", "1000000", True),
        ("payload.trades", "lt", 17, False),
        ("payload.trades", "lte", 17, True),
        ("payload.side", "gt", 1, False),  # not a number: no order
        ("instrument", "contains", "BTC", True),
        ("payload.tags", "contains", "b", True),
        ("payload.tags", "contains", "c", False),
        ("instrument", "regex", r"^KX(BTC|ETH)D-", True),
        ("instrument", "regex", r"^KXETH", False),
        ("payload.missing", "ne", "x", False),  # a missing field never matches
        ("payload.dollar_volume.deeper", "eq", 1, False),
    ],
)
def test_rules(field: str, op: str, value: Any, holds: bool) -> None:
    assert _rule(field, op, value).holds(FIRE) is holds


def test_a_destination_needs_its_signal_pattern_and_every_rule() -> None:
    cfg = parse_config(
        {
            "destinations": [
                {"name": "vol", "topic": "a", "signals": ["volume-*"]},
                {"name": "price", "topic": "b", "signals": ["price-*"]},
                {
                    "name": "both",
                    "topic": "c",
                    "match": [
                        {"field": "venue", "op": "eq", "value": "kalshi"},
                        {"field": "payload.trades", "op": "gt", "value": 20},
                    ],
                },
            ]
        },
        {},
    )
    assert [d.name for d in cfg.matching(FIRE)] == ["vol"]


def test_templates_and_the_json_body() -> None:
    cfg = parse_config(
        {
            "destinations": [
                {
                    "topic": "alerts",
                    "priority": "max",
                    "tags": ["warning"],
                    "title": "Signal ⚡ {signal} — {instrument}",
                    "message": "{venue} ${payload.dollar_volume} ({payload.trades} trades)"
                    " at {time}; {nope}",
                    "click": "https://kalshi.com/markets/{instrument}",
                    "markdown": True,
                }
            ]
        },
        {},
    )
    assert cfg.destinations[0].body(FIRE) == {
        "topic": "alerts",
        "title": "Signal ⚡ volume-1m-5min — KXBTCD-26JAN01-T99999",
        "message": "kalshi $1250000.5 (17 trades) at 2026-01-01T00:00:00Z; ",
        "priority": 5,
        "tags": ["warning"],
        "click": "https://kalshi.com/markets/KXBTCD-26JAN01-T99999",
        "markdown": True,
    }
    assert render("{payload}", FIRE) == "dollar_volume=1250000.5 trades=17 side=yes tags=['a', 'b']"


def test_retry_settings_fall_back_file_then_defaults() -> None:
    cfg = parse_config(
        {
            "retry": {"max_attempts": 4, "backoff": "2s"},
            "destinations": [
                {"name": "a", "topic": "a"},
                {"name": "b", "topic": "b", "retry": {"timeout": "500ms"}},
            ],
        },
        {},
    )
    a, b = cfg.destinations
    assert a.retry == Retry(max_attempts=4, backoff=2.0, backoff_max=30.0, timeout=10.0)
    assert b.retry == Retry(max_attempts=4, backoff=2.0, backoff_max=30.0, timeout=0.5)
    # the defaults outlast a destination that is down for several minutes
    d = parse_config({"destinations": [{"topic": "t"}]}, {}).destinations[0].retry
    assert d.max_attempts * d.backoff_max / 2 > 5 * 60


def test_tokens_come_from_the_environment_or_a_file_it_names(tmp_path: Path) -> None:
    doc = {"destinations": [{"topic": "t", "token_env": "NTFY_TOKEN"}]}
    assert parse_config(doc, {"NTFY_TOKEN": "tk_a"}).destinations[0].token == "tk_a"
    f = tmp_path / "tok"
    f.write_text("tk_from_file\n")
    assert parse_config(doc, {"NTFY_TOKEN_FILE": str(f)}).destinations[0].token == "tk_from_file"
    d = parse_config(doc, {"NTFY_TOKEN": "tk_a"}).destinations[0]
    assert "tk_a" not in repr(d)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "no destinations"),
        ({"destinations": [{"topic": "t", "token": "tk_x"}]}, "token does not belong in the file"),
        ({"destinations": [{"topic": "t", "token_env": "NOPE"}]}, "neither $NOPE nor $NOPE_FILE"),
        ({"destinations": [{"topic": "t", "colour": "red"}]}, "unknown key 'colour'"),
        ({"destinations": [{"name": "a b", "topic": "t"}]}, "name 'a b'"),
        ({"destinations": [{"topic": "t"}, {"topic": "u", "name": "d1"}]}, "used twice"),
        ({"destinations": [{"server": "ntfy.sh", "topic": "t"}]}, "not an http:// or https://"),
        ({"destinations": [{}]}, "topic must be"),
        ({"destinations": [{"topic": "t", "priority": 9}]}, "priority 9"),
        ({"destinations": [{"topic": "t", "cooldown": "soon"}]}, "bad cooldown 'soon'"),
        ({"destinations": [{"topic": "t", "kind": "slack"}]}, "kind 'slack'"),
        (
            {"destinations": [{"topic": "t", "match": [{"field": "x", "op": "like", "value": 1}]}]},
            "op 'like' is not one of eq, ne, gt, gte, lt, lte, contains, regex",
        ),
        (
            {
                "destinations": [
                    {"topic": "t", "match": [{"field": "x", "op": "regex", "value": "("}]}
                ]
            },
            "bad regex",
        ),
        (
            {"destinations": [{"topic": "t", "match": [{"field": "x", "op": "gt", "value": "a"}]}]},
            "gt needs a number",
        ),
        ({"destinations": [{"topic": "t", "match": [{"field": "x", "op": "eq"}]}]}, "value is"),
        ({"retry": {"max_attempts": 0}, "destinations": [{"topic": "t"}]}, "max_attempts"),
        (
            {"retry": {"backoff": "10s", "backoff_max": "1s"}, "destinations": [{"topic": "t"}]},
            "backoff_max is less than backoff",
        ),
    ],
)
def test_bad_files_are_one_line_errors(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(doc, {}, where="notify.toml")
    text = str(err.value)
    assert message in text and text.startswith("notify.toml") and "\n" not in text


def test_toml_and_yaml_files_read_the_same(tmp_path: Path) -> None:
    toml = tmp_path / "n.toml"
    toml.write_text(
        '[retry]\nmax_attempts = 3\n[[destinations]]\nname = "p"\ntopic = "t"\ncooldown = "5m"\n'
        'signals = ["volume-*"]\n'
        'match = [{ field = "payload.dollar_volume", op = "gte", value = 1000000 }]\n'
    )
    yaml = tmp_path / "n.yaml"
    yaml.write_text(
        "retry:\n  max_attempts: 3\ndestinations:\n  - name: p\n    topic: t\n    cooldown: 5m\n"
        "    signals: [volume-*]\n"
        "    match:\n      - {field: payload.dollar_volume, op: gte, value: 1000000}\n"
    )
    a, b = load_config(toml, {}), load_config(yaml, {})
    assert a.destinations == b.destinations
    assert a.destinations[0].cooldown == 300.0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "[[destinations]\n", "not valid TOML"),
        ("bad.yaml", "destinations:\n  - topic: t\n   name: x\n", "not valid YAML (line 3)"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_config(p, {})
    assert str(p) in str(err.value)
    with pytest.raises(ConfigError, match="no such destinations file"):
        load_config(tmp_path / "missing.toml", {})


# -- the publish itself, against the stand-in -------------------------------------------


async def test_publish_outcomes() -> None:
    async with NtfyServer() as server:
        cfg = parse_config(
            {"destinations": [{"server": server.url, "topic": "t", "retry": {"timeout": "0.5s"}}]},
            {},
        )
        d = cfg.destinations[0]
        server.script(
            Answer(429, {"Retry-After": "7"}),
            Answer(503),
            Answer(401, body=b'{"code":40101,"http":401,"error":"unauthorized"}'),
            Answer(delay=2.0),
        )
        async with httpx.AsyncClient() as client:
            outs = [await publish(client, d, FIRE) for _ in range(5)]
    assert [(o.ok, o.retry, o.retry_after) for o in outs] == [
        (False, True, 7.0),
        (False, True, None),
        (False, False, None),
        (False, True, None),
        (True, False, None),
    ]
    assert outs[2].reason == "HTTP 401: unauthorized"
    assert "no answer within 0.5 s" in outs[3].reason
    assert len(server.messages) == 1
    assert (
        orjson.loads(server.requests[-1].body)["title"] == "volume-1m-5min: KXBTCD-26JAN01-T99999"
    )


async def test_a_server_that_is_down_is_a_retryable_outcome() -> None:
    server = NtfyServer()
    await server.start()
    await server.stop()
    d = parse_config({"destinations": [{"server": server.url, "topic": "t"}]}, {}).destinations[0]
    async with httpx.AsyncClient() as client:
        out = await publish(client, d, FIRE)
    assert not out.ok and out.retry and "ConnectError" in out.reason


# -- the CLI ---------------------------------------------------------------------------------


def _ssmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def background_ntfy() -> Iterator[NtfyServer]:
    """A stand-in running on its own loop in a thread (the CLI runs its own loop)."""
    loop = asyncio.new_event_loop()
    server = NtfyServer()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(10)
    yield server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    loop.close()


def test_check_shows_the_destinations_and_sends_a_test(
    tmp_path: Path, background_ntfy: NtfyServer
) -> None:
    conf = tmp_path / "notify.toml"
    conf.write_text(
        f'[[destinations]]\nname = "phone"\nserver = "{background_ntfy.url}"\ntopic = "alerts"\n'
        'token_env = "NTFY_TOKEN"\npriority = "high"\ncooldown = "15m"\nsignals = ["volume-*"]\n'
        'match = [{ field = "payload.dollar_volume", op = "gte", value = 2000000 }]\n'
        '[[destinations]]\nname = "nowhere"\nserver = "http://127.0.0.1:9"\ntopic = "x"\n'
        'retry = { timeout = "1s" }\n'
    )
    r = _ssmd("notify", "check", "--destinations", str(conf), env={"NTFY_TOKEN": "tk_s3cr3t"})
    assert r.returncode == 0, r.stderr
    assert "phone" in r.stdout and "payload.dollar_volume gte 2000000" in r.stdout
    assert "tk_s3cr3t" not in r.stdout + r.stderr
    r = _ssmd(
        "notify", "check", "--send-test", "--json", env={"NTFY_TOKEN": "tk_s3cr3t",
        "SSMD_NOTIFY_CONFIG": str(conf)}
    )  # fmt: skip
    assert r.returncode == 1, r.stderr  # one destination cannot be reached
    doc = orjson.loads(r.stdout)
    tests = {d["name"]: d["test"] for d in doc["destinations"]}
    assert tests["phone"] == "sent" and tests["nowhere"].startswith("failed: ConnectError")
    assert doc["destinations"][0]["token"] is True and "tk_s3cr3t" not in r.stdout
    (msg,) = background_ntfy.messages
    assert msg["topic"] == "alerts" and msg["_authorization"] == "Bearer tk_s3cr3t"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["notify", "check"], {"SSMD_NOTIFY_CONFIG": ""}, "needs a destinations file"),
        (["notify", "check", "--destinations", "/nonexistent.toml"], {}, "no such destinations"),
        (["notify", "run", "--consumer", "a.b", "--nats", "nats://127.0.0.1:1"], {}, "--consumer"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    r = _ssmd(*args, env=env)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
