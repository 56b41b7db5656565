"""``ssmd.book_at`` / ``ssmd.books`` / ``ssmd archive book``: L2 books rebuilt from the archive,
refused across recorded gaps, Kraken checksums checked at every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ssmd
from archive_helpers import SEC, T0, envelope
from golden import FIXTURES
from ssmd.archive import ArchiveWriter
from ssmd.core import Processor
from ssmd.errors import ConfigError

KRAKEN_BOOK = (FIXTURES / "kraken" / "ws_book.jsonl").read_bytes().splitlines()


def _capture(
    root: Path, venue: str, frames: list[bytes], *, conn: str = "c1", t0: int = T0
) -> None:
    """Frames through the core (integrity checks on) into the archive, one second apart."""
    p = Processor(venue, conn)
    with ArchiveWriter(root, venue, conn, fsync=False) as w:
        for i, f in enumerate(frames):
            w.write(p.process([f], t0 + i * SEC).lines())


def _status(root: Path, venue: str, rx: int, token: str, msg: str, conn: str = "c1") -> None:
    with ArchiveWriter(root, venue, f"s{rx}", fsync=False) as w:
        w.write(envelope(rx, f"prod.{venue}.json.status.{token}", msg, conn=conn))


def test_kraken_book_with_every_checksum_verified(tmp_path: Path) -> None:
    _capture(tmp_path, "kraken", KRAKEN_BOOK[:4])
    b = ssmd.book_at("kraken", "BTC/USD", T0 + 3 * SEC, dir=tmp_path)
    assert (b.updates, b.checksums_verified) == (3, 4)  # the snapshot and three updates
    assert b.bids[0] == ("45283.4", "1.54582015")  # 45283.5 was deleted
    assert ("45283.0", "0.25000000") in b.bids
    assert ("45282.1", "0.05000000") in b.bids  # the later of two sets of one level
    assert b.asks[0] == ("45285.0", "0.01200000")
    assert len(b.bids) == len(b.asks) == 10  # truncated to the subscribed depth
    assert ssmd.book_at("kraken", "BTC/USD", T0 + 1 * SEC, dir=tmp_path).updates == 1
    assert ssmd.book_at("kraken", "BTC/USD", T0, dir=tmp_path, depth=3).bids == (
        ("45283.5", "0.10000000"),
        ("45283.4", "1.54582015"),
        ("45282.1", "0.10000000"),
    )
    steps = list(ssmd.books("kraken", "BTC/USD", "2024-03-01", "2024-03-01", dir=tmp_path))
    assert [s.updates for s in steps] == [0, 1, 2, 3]
    assert steps[-1] == b


def test_a_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    bad = KRAKEN_BOOK[2].replace(b'"checksum":386235521', b'"checksum":12345')
    _capture(tmp_path, "kraken", [KRAKEN_BOOK[0], KRAKEN_BOOK[1], bad])
    assert ssmd.book_at("kraken", "BTC/USD", T0 + SEC, dir=tmp_path).checksums_verified == 2
    with pytest.raises(ssmd.BookUnavailable, match=r"followed by a resync|checksum mismatch"):
        ssmd.book_at("kraken", "BTC/USD", T0 + 2 * SEC, dir=tmp_path)
    with pytest.raises(ssmd.BookUnavailable, match="checksum"):
        list(ssmd.books("kraken", "BTC/USD", T0, T0 + 9 * SEC, dir=tmp_path, on_gap="raise"))
    assert len(list(ssmd.books("kraken", "BTC/USD", T0, T0 + 9 * SEC, dir=tmp_path))) == 2


def test_my_own_checksum_check_without_the_connector_s_resync(tmp_path: Path) -> None:
    """Archives written by other tools carry no resync lines: the rebuild checks itself."""
    bad = KRAKEN_BOOK[1].replace(b'"qty":0.25000000', b'"qty":0.25000001')
    lines = [
        envelope(T0 + i * SEC, "prod.kraken.json.book.BTC_USD", f.decode())
        for i, f in enumerate([KRAKEN_BOOK[0], bad])
    ]
    with ArchiveWriter(tmp_path, "kraken", "w", fsync=False) as w:
        w.write(b"".join(lines))
    with pytest.raises(ssmd.BookUnavailable, match=r"checksum mismatch at rx .*sent 1105488494"):
        ssmd.book_at("kraken", "BTC/USD", T0 + SEC, dir=tmp_path)


KALSHI_SNAP = (
    '{"type":"orderbook_snapshot","sid":2,"seq":%d,"msg":{"market_ticker":"KX-1",'
    '"yes_dollars_fp":[["0.0800","300.00"],["0.2200","333.00"]],'
    '"no_dollars_fp":[["0.5400","20.00"],["0.5600","146.00"]]}}'
)
KALSHI_DELTA = (
    '{"type":"orderbook_delta","sid":2,"seq":%d,"msg":{"market_ticker":"KX-1",'
    '"price_dollars":"%s","delta_fp":"%s","side":"%s"}}'
)


def _kalshi(root: Path, *deltas: tuple[str, str, str]) -> None:
    frames = [(KALSHI_SNAP % 1).encode()]
    frames += [(KALSHI_DELTA % (i + 2, *d)).encode() for i, d in enumerate(deltas)]
    _capture(root, "kalshi", frames)


def test_kalshi_deltas_add_to_levels(tmp_path: Path) -> None:
    _kalshi(
        tmp_path, ("0.2200", "-33.00", "yes"), ("0.0800", "-300.00", "yes"), ("0.5600", "4", "no")
    )
    b = ssmd.book_at("kalshi", "KX-1", T0 + 3 * SEC, dir=tmp_path)
    assert b.bids == (("0.2200", "300.00"),)  # 333 - 33; the 0.08 level went to zero
    assert b.asks == (("0.4400", "150.00"), ("0.4600", "20.00"))  # NO bids as YES asks
    assert b.seq == 4


def test_refused_across_a_recorded_resync_until_the_next_snapshot(tmp_path: Path) -> None:
    _kalshi(tmp_path, ("0.2200", "-33.00", "yes"), ("0.2200", "-10.00", "yes"))
    _status(tmp_path, "kalshi", T0 + SEC + 1, "KX-1", '{"ssmd":"resync","reason":"gap"}')
    assert ssmd.book_at("kalshi", "KX-1", T0 + SEC, dir=tmp_path).bids[0][1] == "300.00"
    with pytest.raises(ssmd.BookUnavailable, match=r"followed by a resync recorded at rx"):
        ssmd.book_at("kalshi", "KX-1", T0 + 2 * SEC, dir=tmp_path)
    # a new snapshot after it makes the book known again
    _capture(tmp_path, "kalshi", [(KALSHI_SNAP % 9).encode()], conn="c2", t0=T0 + 5 * SEC)
    assert ssmd.book_at("kalshi", "KX-1", T0 + 6 * SEC, dir=tmp_path).snapshot_rx == T0 + 5 * SEC


@pytest.mark.parametrize(
    ("token", "msg", "refused"),
    [
        (
            "c1",
            '{"ssmd":"disconnect","conn":"c1","reason":"closed"}',
            "disconnect of its connection",
        ),
        ("c9", '{"ssmd":"disconnect","conn":"c9","reason":"closed"}', None),  # another connection
        ("archiver", '{"ssmd":"gap","reason":"stream","from":5,"to":9}', "stream gap"),
        ("c1", '{"ssmd":"gap","sid":7,"instrument":"KX-OTHER","missing":2}', None),
        ("c1", '{"ssmd":"gap","sid":2,"instrument":"KX-1","missing":2}', "a gap recorded"),
    ],
)
def test_connection_and_stream_events(
    tmp_path: Path, token: str, msg: str, refused: str | None
) -> None:
    _kalshi(tmp_path, ("0.2200", "-33.00", "yes"))
    _status(tmp_path, "kalshi", T0 + SEC // 2, token, msg, conn=token)
    if refused is None:
        assert ssmd.book_at("kalshi", "KX-1", T0 + 2 * SEC, dir=tmp_path).updates == 1
    else:
        with pytest.raises(ssmd.BookUnavailable, match=refused):
            ssmd.book_at("kalshi", "KX-1", T0 + 2 * SEC, dir=tmp_path)


def test_no_snapshot_is_refused(tmp_path: Path) -> None:
    _capture(tmp_path, "kraken", KRAKEN_BOOK[1:3])  # updates only
    with pytest.raises(ssmd.BookUnavailable, match="no book snapshot of 'BTC/USD'"):
        ssmd.book_at("kraken", "BTC/USD", T0 + 5 * SEC, dir=tmp_path)


def _ssmd(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args], capture_output=True, env=env, timeout=60
    )


def test_cli(tmp_path: Path) -> None:
    _capture(tmp_path, "kraken", KRAKEN_BOOK[:4])
    base = [
        "archive",
        "book",
        "--dir",
        str(tmp_path),
        "--venue",
        "kraken",
        "--instrument",
        "BTC/USD",
    ]
    r = _ssmd(*base, "--at", "2024-03-01T00:00:03Z", "--depth", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert "3 updates" in out[0] and "4 checksums verified" in out[0]
    assert out[2].split() == ["1.54582015", "45283.4", "|", "45285.0", "0.01200000"]
    assert len(out) == 4
    r = _ssmd(*base, "--at", str(T0 + 3 * SEC), "--json", "--precision", "1,8")
    doc = json.loads(r.stdout)
    assert doc["checksums_verified"] == 4 and doc["bids"][0] == ["45283.4", "1.54582015"]
    r = _ssmd(*base, "--at", "2024-02-29T12:00:00", "--lookback-days", "0")
    assert r.returncode == 1
    assert r.stderr.decode().startswith("ssmd: error: no book snapshot")
    r = _ssmd(*base, "--at", "2024-03-01T00:00:03Z", "--precision", "x")
    assert r.returncode == 2 and b"bad --precision" in r.stderr


def test_far_and_bad_moments_are_one_line(tmp_path: Path) -> None:
    """``--at`` beyond what an rx can hold, before 1970 or not a time: one line, never a
    traceback; the last moment there is reads as a moment (nothing archived then)."""
    _capture(tmp_path, "kraken", KRAKEN_BOOK[:2])
    base = ["archive", "book", "--dir", str(tmp_path), "--venue", "kraken"]
    base += ["--instrument", "BTC/USD", "--lookback-days", "0"]
    for at in ("99999999999999999999999", "18446744073709551616", "1960-01-01", "soon"):
        r = _ssmd(*base, "--at", at)
        assert r.returncode == 2, (at, r.stderr)
        assert r.stderr.decode().startswith("ssmd: error: bad at") and r.stderr.count(b"\n") == 1
    for at in ("18446744073709551615", "9999-12-31T23:59:59", "9999-12-31"):
        r = _ssmd(*base, "--at", at)
        assert r.returncode == 1, (at, r.stderr)
        assert r.stderr.decode().startswith("ssmd: error: no book snapshot"), r.stderr
    with pytest.raises(ConfigError, match="2\\*\\*64"):
        ssmd.book_at("kraken", "BTC/USD", 2**64, dir=tmp_path)
    with pytest.raises(ConfigError, match="2\\*\\*64"):
        ssmd.book_at("kraken", "BTC/USD", -1, dir=tmp_path)
