"""``ssmd replay`` on the in-process bus (the project's JetStream stand-in, same sink):
order, subjects under the new environment, pace, no drops; prod refused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from archive_helpers import SEC, T0, envelope
from ssmd.archive import ArchiveWriter, iter_lines
from ssmd.bus import BusSink, MemoryBus, MemoryTransport, stream_specs
from ssmd.errors import ConfigError
from ssmd.replay import archive_lines, check_env, replay, rewrite


def _archive(root: Path, n: int = 300, step: int = SEC // 100) -> list[bytes]:
    """Kraken and Kalshi lines interleaved over two writers, with archiver seqs."""
    lines = []
    wa = ArchiveWriter(root, "kraken", "a", fsync=False)
    wb = ArchiveWriter(root, "kalshi", "a", fsync=False)
    for i in range(n):
        venue = "kraken" if i % 3 else "kalshi"
        subj = f"prod.{venue}.json.trade.X_{i % 5}"
        line = envelope(T0 + i * step, subj, f'{{"i":{i}}}', seq=i + 1)
        (wa if venue == "kraken" else wb).write(line)
        lines.append(line.rstrip(b"\n"))
    wa.close()
    wb.close()
    return lines


def _sinks(bus: MemoryBus, env: str) -> Any:
    async def make(venue: str) -> BusSink:
        sink = BusSink(MemoryTransport(bus), env=env, venue=venue)
        await sink.transport.start(sink)
        await sink.start()
        return sink

    return make


def _published(bus: MemoryBus, env: str) -> list[tuple[str, bytes]]:
    out = []
    for name in (f"{env.upper()}_KALSHI", f"{env.upper()}_KRAKEN"):
        for _, subject, data, _ in bus.stream(name).msgs:
            out.extend((subject, line) for line in data.splitlines())
    return sorted(out, key=lambda p: orjson.loads(p[1])["rx"])


def test_rewrite() -> None:
    line = b'{"rx":5,"seq":[42,3],"conn":"c","subj":"prod.kraken.json.trade.BTC_USD","msg":{}}'
    venue, subject, out = rewrite(line, b"replay")
    assert (venue, subject) == ("kraken", "replay.kraken.json.trade.BTC_USD")
    assert out == b'{"rx":5,"conn":"c","subj":"replay.kraken.json.trade.BTC_USD","msg":{}}'
    line = b'{"rx":5,"conn":"c","subj":"prod.kalshi.politics.json.trade.K","msg":{"seq":1}}'
    assert rewrite(line, b"t")[:2] == ("kalshi", "t.kalshi.politics.json.trade.K")


def test_every_line_in_order_under_the_new_env(tmp_path: Path) -> None:
    original = _archive(tmp_path)
    bus = MemoryBus(stream_specs("sandbox"))
    lines = archive_lines(tmp_path, ["kraken", "kalshi"], None, None, None, None)
    # batch=7: the back-pressure check runs many times on the way
    result = asyncio.run(replay(lines, _sinks(bus, "sandbox"), "sandbox", speed=None, batch=7))
    assert result.lines == result.acked == 300 and result.dropped == 0
    assert result.per_venue == {"kraken": 200, "kalshi": 100}
    got = _published(bus, "sandbox")
    assert [line for _, line in got] == [
        line.replace(b',"seq":%d' % (i + 1), b"").replace(b'"prod.', b'"sandbox.')
        for i, line in enumerate(original)
    ]
    assert all(s.startswith("sandbox.") and s in line.decode() for s, line in got)


def test_the_recorded_pace_is_kept(tmp_path: Path) -> None:
    _archive(tmp_path, n=50, step=SEC // 50)  # one second of lines
    bus = MemoryBus(stream_specs("paced"))
    started = time.monotonic()
    lines = archive_lines(tmp_path, ["kraken", "kalshi"], None, None, None, None)
    asyncio.run(replay(lines, _sinks(bus, "paced"), "paced", speed=2.0))
    # the last line is due 0.49 s after the first at twice the pace: never earlier
    assert time.monotonic() - started >= 0.45
    assert sum(len(bus.stream(n).msgs) for n in ("PACED_KRAKEN", "PACED_KALSHI")) >= 2


def test_bounds_select_lines(tmp_path: Path) -> None:
    _archive(tmp_path)
    lines = list(archive_lines(tmp_path, ["kraken"], None, None, T0 + SEC, T0 + 2 * SEC))
    assert lines == [
        line
        for line in iter_lines(tmp_path, "kraken")
        if T0 + SEC <= orjson.loads(line)["rx"] < T0 + 2 * SEC
    ]
    with pytest.raises(ConfigError, match=r"no archive files in .* for polymarket in that range"):
        list(archive_lines(tmp_path, ["polymarket"], None, None, None, None))
    # no venue at all (an empty archive): the message still says which venues
    with pytest.raises(ConfigError, match="for any venue in that range"):
        list(archive_lines(tmp_path / "empty", [], None, None, None, None))
    with pytest.raises(ConfigError, match="for kraken, polymarket in that range"):
        list(
            archive_lines(tmp_path, iter(["kraken", "polymarket"]), "2030-01-01", None, None, None)
        )


@pytest.mark.parametrize(
    ("env", "allow", "message"),
    [
        ("prod", False, "replaying onto prod would mix old data"),
        ("Bad.Env", False, "bad --env 'Bad.Env'"),
        ("a>b", True, "bad --env"),
    ],
)
def test_env_checks(env: str, allow: bool, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_env(env, allow)
    assert check_env("prod", True) == "prod"
