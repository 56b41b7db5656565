"""Messages nats-server or JetStream will never take affect those messages alone.

An over-long or malformed subject would make nats-server close the whole
connection ("maximum control line exceeded"), a message over the server's max
payload is refused by the client, one over the stream's message size by
JetStream: each is dropped and recorded as a ``gap`` line naming the cause,
and every other message of every other subject is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ssmd.bus.nats import open_bus_sink, subject_problem

pytestmark = pytest.mark.integration


def _line(subject: str, i: int, pad: int = 0) -> bytes:
    body = {"i": i, "pad": "x" * pad}
    return orjson.dumps({"rx": 1000 + i, "conn": "c1", "subj": subject, "msg": body}) + b"\n"


async def _stored(nc: Any, stream: str) -> list[dict[str, Any]]:
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.extend(orjson.loads(x) for x in msg.data.splitlines())
    return out


async def test_refused_messages_become_gaps_and_everything_else_is_stored(
    nats_url: str, bus_env: str, tmp_path: Path
) -> None:
    sink, nc = await open_bus_sink("kraken", env=bus_env, url=nats_url)
    stream = f"{bus_env.upper()}_KRAKEN"
    good = [f"{bus_env}.kraken.json.trade.{s}" for s in ("BTC_USD", "ETH_USD", "SOL_USD")]
    long_subject = f"{bus_env}.kraken.json.trade." + "X" * 5000
    spaced = f"{bus_env}.kraken.json.trade.A B"
    try:
        assert subject_problem(good[0]) is None
        assert subject_problem(long_subject) and subject_problem(spaced)
        n = 0
        for round_ in range(200):
            for subj in good:
                n += 1
                sink.put(subj, _line(subj, n), f"c1:{n}.0", 1)
            if round_ == 50:
                sink.put(long_subject, _line(long_subject, 0), "c1:long.0", 1)
            if round_ == 100:
                sink.put(spaced, _line(spaced, 0), "c1:spaced.0", 1)
            if round_ == 150:  # 2 MiB: over nats-server's default max payload of 1 MiB
                sink.put(good[0], _line(good[0], 0, pad=2 << 20), "c1:huge.0", 1)
        assert await sink.drain(20)
        assert nc.is_connected
        # the stream refuses what is over its own message size (JetStream error 400)
        js = nc.jetstream()
        cfg = (await js.stream_info(stream)).config
        cfg.max_msg_size = 64 << 10
        await js.update_stream(cfg)
        sink.put(good[1], _line(good[1], 0, pad=100 << 10), "c1:big.0", 1)
        for _ in range(3):
            n += 1
            sink.put(good[2], _line(good[2], n), f"c1:{n}.0", 1)
        assert await sink.drain(20)
        stats = sink.stats()
        await sink.aclose()
        lines = await _stored(nc, stream)
    finally:
        await nc.close()
    data = [x for x in lines if "ssmd" not in x["msg"]]
    assert sorted(x["msg"]["i"] for x in data) == list(range(1, n + 1))  # nothing else lost
    gaps = [x["msg"] for x in lines if x["msg"].get("ssmd") == "gap"]
    causes = sorted(g["cause"] for g in gaps)
    assert len(gaps) == 4 and stats["refused"] == 4 and stats["dropped_lines"] == 4, gaps
    assert all(g["reason"] == "bus" and g["dropped_lines"] == 1 for g in gaps)
    assert {g["first_id"] for g in gaps} == {"c1:long.0", "c1:spaced.0", "c1:huge.0", "c1:big.0"}
    assert any("longer than 1024" in c for c in causes), causes
    assert any("whitespace" in c for c in causes), causes
    assert any("max payload" in c for c in causes), causes
    assert any(c.startswith("refused by the server:") and "10054" in c for c in causes), causes
