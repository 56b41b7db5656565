"""Reading archives of the original ssmd: ``{feed}/{stream}/{date}/{HHMM}.jsonl.gz``.

The tree is built from the raw fixture frames (``tests/fixtures/<venue>/ws_*.jsonl``):
one stream per fixture file, all in the 14:15 window of 2026-01-05, except

* kraken ``book``: frames 0-3 at 14:15, 4-5 at 14:30 (state carries over),
* kraken ``ticker``: ``1415.jsonl.gz`` and the collision file ``1415-01.jsonl.gz``,
* polymarket ``array``: a plain ``1415.jsonl``,
* polymarket ``book``: 00:00 on 2026-01-06,
* kraken_futures ``trade``: a gzip truncated in its last line, at 14:30.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import logging
import os
import re
import subprocess
import sys
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ssmd.archive import (
    ArchiveWriter,
    LegacyFile,
    count_legacy_files,
    find_legacy_files,
    is_legacy_layout,
    iter_legacy_lines,
)
from ssmd.archive.legacy import BATCH_LINES
from ssmd.errors import ConfigError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FEEDS = {
    "kalshi": "kalshi",
    "kraken": "kraken",
    "kraken_futures": "kraken-futures",
    "polymarket": "polymarket",
}


def ns(text: str) -> int:
    t = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp()) * 10**9


DAY, DAY2 = "2026-01-05", "2026-01-06"
W1, W2, W3 = ns("2026-01-05T14:15"), ns("2026-01-05T14:30"), ns("2026-01-06T00:00")


@dataclasses.dataclass
class Frame:
    venue: str  # as in subjects: kraken-futures
    stream: str
    rx: int
    raw: bytes
    messages: list[dict[str, Any]]  # from ws_*.expected.jsonl

    @property
    def control(self) -> bool:
        return not self.messages


@dataclasses.dataclass
class Tree:
    root: Path
    frames: list[Frame]  # every frame written and readable (not the truncated one)
    lost: Frame  # the last frame of the truncated file
    truncated: Path
    first_rx: dict[Path, int]  # file -> rx of its first frame, when that one is data


def loads(line: bytes) -> Any:
    return json.loads(line)


def fixture_files(venue_dir: str) -> list[tuple[str, list[bytes], list[dict[str, Any]]]]:
    out = []
    for path in sorted((FIXTURES / venue_dir).glob("ws_*.jsonl")):
        if path.name.endswith(".expected.jsonl"):
            continue
        channel = path.name[3 : -len(".jsonl")]
        frames = path.read_bytes().splitlines()
        expected = path.with_name(f"ws_{channel}.expected.jsonl").read_bytes().splitlines()
        rows = [loads(x) for x in expected[: len(frames)]]
        assert [r["frame"] for r in rows] == list(range(1, len(frames) + 1))
        out.append((channel, frames, [r["messages"] for r in rows]))
    return out


def gz_lines(frames: list[bytes]) -> list[bytes]:
    """Gzip of the frames, one sync-flushed piece per line (plus the trailer)."""
    co = zlib.compressobj(6, zlib.DEFLATED, 31)
    pieces = [co.compress(f + b"\n") + co.flush(zlib.Z_SYNC_FLUSH) for f in frames]
    pieces.append(co.flush())
    return pieces


def build_tree(root: Path) -> Tree:
    frames: list[Frame] = []
    first_rx: dict[Path, int] = {}
    lost: Frame | None = None
    truncated = Path()

    def write(
        feed: str, stream: str, day: str, name: str, window: int, part: list[int], fx: Any
    ) -> None:
        nonlocal lost, truncated
        raw_frames, messages = fx
        d = root / feed / stream / day
        d.mkdir(parents=True, exist_ok=True)
        picked = [raw_frames[i] for i in part]
        rx0 = window + (2 if name.endswith("-01.jsonl.gz") else 0)
        made = [
            Frame(FEEDS[feed], stream, rx0 + n, raw_frames[i], messages[i])
            for n, i in enumerate(part)
        ]
        if name == "truncated":
            pieces = gz_lines(picked)
            cut = b"".join(pieces[:-2]) + pieces[-2][: len(pieces[-2]) // 2]
            truncated = d / "1430.jsonl.gz"
            truncated.write_bytes(cut)
            lost = made.pop()
        elif name.endswith(".gz"):
            (d / name).write_bytes(gzip.compress(b"".join(f + b"\n" for f in picked)))
        else:
            (d / name).write_bytes(b"".join(f + b"\n" for f in picked))
        frames.extend(made)
        path = truncated if name == "truncated" else d / name
        if made and not made[0].control:
            first_rx[path] = made[0].rx

    for feed in FEEDS:
        for channel, raw_frames, messages in fixture_files(feed):
            fx = (raw_frames, messages)
            every = list(range(len(raw_frames)))
            if (feed, channel) == ("kraken", "book"):
                write(feed, channel, DAY, "1415.jsonl.gz", W1, every[:4], fx)
                write(feed, channel, DAY, "1430.jsonl.gz", W2, every[4:], fx)
            elif (feed, channel) == ("kraken", "ticker"):
                write(feed, channel, DAY, "1415.jsonl.gz", W1, every[:2], fx)
                write(feed, channel, DAY, "1415-01.jsonl.gz", W1, every[2:], fx)
            elif (feed, channel) == ("polymarket", "array"):
                write(feed, channel, DAY, "1415.jsonl", W1, every, fx)
            elif (feed, channel) == ("polymarket", "book"):
                write(feed, channel, DAY2, "0000.jsonl.gz", W3, every, fx)
            elif (feed, channel) == ("kraken_futures", "trade"):
                write(feed, channel, DAY, "truncated", W2, every, fx)
            else:
                write(feed, channel, DAY, "1415.jsonl.gz", W1, every, fx)
    # never read: a file being written, other names, a non-date dir, an unknown feed
    (root / "kraken/book" / DAY / "1445.jsonl.gz.tmp").write_bytes(gzip.compress(b"{}\n"))
    (root / "kraken/book" / DAY / "notes.txt").write_text("x")
    (root / "kraken/book/latest").mkdir()
    (root / "kraken/book/latest/1415.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    (root / "binance/spot" / DAY).mkdir(parents=True)
    (root / "binance/spot" / DAY / "1415.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    assert lost is not None
    frames.sort(key=lambda f: f.rx)
    return Tree(root, frames, lost, truncated, first_rx)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return build_tree(tmp_path / "old")


def msg_bytes(line: bytes) -> bytes:
    return line[line.index(b',"msg":') + 7 : -1]


def integrity_status(env: dict[str, Any]) -> bool:
    """A gap/late/resync line of the core (allowed in addition to the data)."""
    msg = env["msg"]
    return isinstance(msg, dict) and msg.get("ssmd") not in (None, "malformed")


def read_all(root: Path, **kw: Any) -> list[bytes]:
    return list(iter_legacy_lines(root, **kw))


# --- files -------------------------------------------------------------------


def test_find_legacy_files(tree: Tree) -> None:
    files = find_legacy_files(tree.root)
    assert all(isinstance(f, LegacyFile) for f in files)
    starts = [f.window_start_ns for f in files]
    assert starts == sorted(starts)
    names = {(f.venue, f.stream, f.date.isoformat(), f.name) for f in files}
    assert ("kraken", "book", DAY, "1430.jsonl.gz") in names
    assert ("kraken", "ticker", DAY, "1415-01.jsonl.gz") in names
    assert ("polymarket", "array", DAY, "1415.jsonl") in names
    assert ("polymarket", "book", DAY2, "0000.jsonl.gz") in names
    assert ("kraken-futures", "trade", DAY, "1430.jsonl.gz") in names
    assert not any(f.name.endswith(".tmp") or f.stream == "latest" for f in files)
    assert {f.venue for f in files} == set(FEEDS.values())  # binance ignored

    ticker = [f for f in files if (f.venue, f.stream) == ("kraken", "ticker")]
    assert [(f.name, f.part, f.window_start_ns) for f in ticker] == [
        ("1415.jsonl.gz", 0, W1),
        ("1415-01.jsonl.gz", 1, W1),
    ]
    assert ticker[0].conn == "legacy:ticker" and ticker[0].compressed
    day2 = find_legacy_files(tree.root, date_from=DAY2)
    assert [(f.venue, f.stream, f.window_start_ns) for f in day2] == [("polymarket", "book", W3)]
    assert all(f.date == dt.date(2026, 1, 5) for f in find_legacy_files(tree.root, date_to=DAY))
    for spelling in ("kraken-futures", "kraken_futures", "krakenfutures", "Kraken_Futures"):
        got = find_legacy_files(tree.root, venue=spelling)
        assert got and {f.venue for f in got} == {"kraken-futures"}


def test_find_bad_input(tree: Tree, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="archive directory not found"):
        find_legacy_files(tmp_path / "missing")
    with pytest.raises(ConfigError, match="bad date '2026-02-30'"):
        find_legacy_files(tree.root, date_from="2026-02-30")
    with pytest.raises(ConfigError, match="unknown venue 'binance'"):
        list(iter_legacy_lines(tree.root, venue="binance"))


def test_is_legacy_layout(tree: Tree, tmp_path: Path) -> None:
    assert is_legacy_layout(tree.root)
    assert not is_legacy_layout(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert not is_legacy_layout(tmp_path / "empty")
    new = tmp_path / "new"
    with ArchiveWriter(new, "kraken", "a", fsync=False) as w:
        w.write(b'{"rx":1,"conn":"c","subj":"prod.kraken.json.trade.BTC_USD","msg":{}}\n')
    assert not is_legacy_layout(new)
    with ArchiveWriter(tree.root, "kraken", "a", fsync=False) as w:  # mixed: not legacy only
        w.write(b'{"rx":1,"conn":"c","subj":"prod.kraken.json.trade.BTC_USD","msg":{}}\n')
    assert not is_legacy_layout(tree.root)


# --- lines -------------------------------------------------------------------


def test_every_frame_once_verbatim(tree: Tree) -> None:
    lines = read_all(tree.root)
    by_frame: dict[tuple[str, str, int], list[tuple[bytes, dict[str, Any]]]] = defaultdict(list)
    for line in lines:
        env = loads(line)
        by_frame[env["subj"].split(".")[1], env["conn"], env["rx"]].append((line, env))
    data_frames = 0
    for f in tree.frames:
        got = by_frame.pop((f.venue, f"legacy:{f.stream}", f.rx), [])
        if f.control:
            assert got == [], f.raw  # acks, heartbeats, PONG: never archived
            continue
        data_frames += 1
        data = [(line, env) for line, env in got if not integrity_status(env)]
        assert len(data) == len(f.messages), (f.raw, got)
        for (line, env), want in zip(data, f.messages, strict=True):
            if want["class"] == "malformed":
                assert env["msg"]["ssmd"] == "malformed"
                if "raw" in env["msg"]:  # the frame, or its element of an array frame
                    assert env["msg"]["raw"].encode() in f.raw
                else:
                    assert "raw_b64" in env["msg"]
            elif f.raw.startswith(b"["):  # array frame: each element, verbatim
                assert msg_bytes(line) in f.raw
            else:  # the frame's bytes, verbatim, as msg
                assert line.endswith(b',"msg":' + f.raw + b"}"), (line, f.raw)
            assert env["subj"].split(".json.")[1].split(".")[0] == want["kind"]
    assert not by_frame, by_frame  # nothing from nowhere
    assert data_frames == sum(not f.control for f in tree.frames) > 60
    assert sum(f.control for f in tree.frames) > 20
    assert tree.lost.raw not in b"\n".join(lines)
    controls = [b'{"channel":"heartbeat"}', b"PONG", b'"type":"subscribed"', b'"event":"info"']
    assert not any(c in msg_bytes(line) for c in controls for line in lines)


def test_rx_order_and_window_start(tree: Tree) -> None:
    lines = read_all(tree.root)
    rxs = [loads(x)["rx"] for x in lines]
    assert rxs == sorted(rxs)
    assert rxs[0] == W1 and rxs[-1] >= W3
    # the two windows are interleaved across venues and streams by rx
    assert {r for r in rxs if r < W2} and {r for r in rxs if W2 <= r < W3}
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    for x in lines:
        env = loads(x)
        seen[env["subj"].split(".")[1], env["conn"]].add(env["rx"])
    files = {f.path: f for f in find_legacy_files(tree.root)}
    assert len(tree.first_rx) > 20
    for path, rx in tree.first_rx.items():
        f = files[path]
        assert rx in seen[f.venue, f.conn]
        # line 0 of a file is at its window start; a collision file continues
        assert rx == f.window_start_ns + (2 if f.part else 0)
    book = [loads(x) for x in read_all(tree.root, venue="kraken", kinds=["book"])]
    assert [e["rx"] for e in book] == [W1, W1 + 1, W1 + 2, W1 + 3, W2, W2 + 1]


def test_kind_and_instrument_filters(tree: Tree) -> None:
    everything = [loads(x) for x in read_all(tree.root)]

    def kind(env: dict[str, Any]) -> str:
        return str(env["subj"].split(".json.")[1].split(".")[0])

    def instrument(env: dict[str, Any]) -> str:
        return str(env["subj"].split(".json.")[1].split(".", 1)[1])

    book = read_all(tree.root, venue="kraken", kinds=["book"])
    raw_book = (FIXTURES / "kraken/ws_book.jsonl").read_bytes().splitlines()
    assert [msg_bytes(x) for x in book] == raw_book

    trades = [loads(x) for x in read_all(tree.root, kinds=["trade"])]
    assert trades == [e for e in everything if kind(e) == "trade"]
    assert {e["subj"].split(".")[1] for e in trades} == set(FEEDS.values())

    btc = read_all(tree.root, instruments=["BTC/USD"])
    assert btc == read_all(tree.root, instruments=["BTC_USD"])
    assert {instrument(loads(x)) for x in btc} == {"BTC_USD"}
    assert {kind(loads(x)) for x in btc} >= {"book", "ticker"}
    assert read_all(tree.root, kinds="book", instruments=["BTC/USD"]) == [
        x for x in btc if kind(loads(x)) == "book"
    ]
    assert read_all(tree.root, kinds=["nope"]) == []

    later = [loads(x)["rx"] for x in read_all(tree.root, rx_from=W2, rx_to=W3)]
    assert later and all(W2 <= r < W3 for r in later)
    assert read_all(tree.root, date_from=DAY2) == [
        x for x in read_all(tree.root) if loads(x)["rx"] >= W3
    ]


def test_truncated_gzip_yields_complete_lines_and_warns(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ssmd.archive"):
        lines = read_all(tree.root, venue="kraken-futures", kinds=["trade", "malformed"])
    joined = b"\n".join(lines)
    trade = [f for f in tree.frames if (f.venue, f.stream) == ("kraken-futures", "trade")]
    assert len(trade) == len(fixture_files("kraken_futures")[-2][1]) - 1
    for f in trade:
        assert f.raw in joined or f.raw.replace(b'"', b'\\"') in joined
    assert tree.lost.raw not in joined
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert text.startswith(f"{tree.truncated}: the file ends inside the gzip member at offset 0")
    assert re.search(
        r" after [1-9]\d* bytes of it were read \(.*\) \(dropped 1 member, \d+ bytes, 1 line\)$",
        text,
    ), text


def test_corrupt_and_unreadable_files_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "old"
    d = root / "kraken/spot" / DAY
    d.mkdir(parents=True)
    raw = (FIXTURES / "kraken/ws_trade.jsonl").read_bytes()
    (d / "1400.jsonl.gz").write_bytes(raw)  # not gzip at all
    good = gzip.compress(raw)
    (d / "1415.jsonl.gz").write_bytes(good + b"trailing garbage")
    (d / "1430.jsonl.gz").write_bytes(good)
    with caplog.at_level(logging.WARNING, logger="ssmd.archive"):
        lines = read_all(root)
    assert [loads(x)["rx"] for x in lines] == [W1, W1 + 1, W2, W2 + 1]
    warned = sorted(r.getMessage().split(":")[0] for r in caplog.records)
    assert warned == [str(d / "1400.jsonl.gz"), str(d / "1415.jsonl.gz")]


def test_batches_long_lines_and_blank_lines(tmp_path: Path) -> None:
    ticker = (FIXTURES / "kraken/ws_ticker.jsonl").read_bytes().splitlines()
    big = (
        b'{"channel":"ohlc","type":"update","data":[{"symbol":"BTC/USD","pad":"'
        + b"x" * 200_000
        + b'"}]}'
    )
    frames = [ticker[i % len(ticker)] for i in range(2 * BATCH_LINES + 500)]
    frames[BATCH_LINES - 1] = big
    body = b"\n".join(frames[:100]) + b"\n\n  \n" + b"\n".join(frames[100:])  # no final newline
    for name in ("1415.jsonl", "1415.jsonl.gz"):
        root = tmp_path / name
        d = root / "kraken/spot" / DAY
        d.mkdir(parents=True)
        (d / name).write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
        lines = read_all(root)
        assert [msg_bytes(x) for x in lines] == frames
        rxs = [loads(x)["rx"] for x in lines]
        assert rxs == [W1 + i for i in range(100)] + [W1 + i + 2 for i in range(100, len(frames))]
        [(_, n, subjects)] = list(count_legacy_files(find_legacy_files(root)))
        assert n == len(frames) and sum(subjects.values()) == len(frames)


def test_sequence_restart_is_a_reconnect_not_duplicates(tmp_path: Path) -> None:
    def trade(seq: int, tid: str) -> bytes:
        msg = (
            f'{{"trade_id":"{tid}","market_ticker":"KXBTCD-26NOV25-T100.99",'
            '"yes_price_dollars":"0.4200","count_fp":"3.00","taker_side":"yes","ts_ms":1790000000000}'
        )
        return f'{{"type":"trade","sid":2,"seq":{seq},"msg":{msg}}}'.encode()

    # the original connector reconnected twice; sid/seq restart every time
    frames = [trade(s, f"{c}{s}") for c in "abc" for s in (1, 2, 3)]
    d = tmp_path / "old/kalshi/crypto" / DAY
    d.mkdir(parents=True)
    (d / "1415.jsonl.gz").write_bytes(gzip.compress(b"\n".join(frames[:5])))
    (d / "1430.jsonl.gz").write_bytes(gzip.compress(b"\n".join(frames[5:])))
    lines = read_all(tmp_path / "old")
    data = [x for x in lines if b".json.trade." in x]
    assert [msg_bytes(x) for x in data] == frames
    assert all(b".json.trade.KXBTCD-26NOV25-T100_99" in x for x in data)
    # each reconnect is recorded where it happened, so a replay knows state restarted
    restarts = [json.loads(msg_bytes(x)) for x in lines if b'"ssmd":"restart"' in x]
    assert restarts == [
        {"ssmd": "restart", "sid": 2, "last": 3, "seq": 1},
        {"ssmd": "restart", "sid": 2, "last": 3, "seq": 1},
    ]
    assert len(lines) == len(frames) + 2


# --- command line ------------------------------------------------------------


def ssmd(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_cat(tree: Tree) -> None:
    root = str(tree.root)
    want = b"".join(x + b"\n" for x in iter_legacy_lines(tree.root, "kraken", kinds=["book"]))
    assert want.count(b"\n") == 6
    r = ssmd("archive", "cat", "--dir", root, "--legacy", "--venue", "kraken", "--kind", "book")
    assert r.returncode == 0, r.stderr
    assert r.stdout == want
    assert r.stderr == b""

    # auto-detected: same lines, and one note on stderr
    r = ssmd("archive", "cat", "--dir", root, "--venue", "kraken", "--kind", "book")
    assert r.returncode == 0, r.stderr
    assert r.stdout == want
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "original-ssmd" in err and "--legacy" in err

    r = ssmd("archive", "cat", "--dir", root, "--venue", "kraken", "--kind", "book", "--msg-only")
    assert r.stdout.splitlines() == (FIXTURES / "kraken/ws_book.jsonl").read_bytes().splitlines()

    r = ssmd(
        "archive",
        "cat",
        "--dir",
        root,
        "--legacy",
        "--instrument",
        "BTC/USD",
        "--from",
        "2026-01-05T14:30",
        "--to",
        "2026-01-05",
    )
    assert r.returncode == 0, r.stderr
    want = b"".join(
        x + b"\n"
        for x in iter_legacy_lines(tree.root, instruments=["BTC_USD"], rx_from=W2, rx_to=W3)
    )
    assert r.stdout == want

    # a truncated file: its complete lines, one warning line, exit 0
    r = ssmd("archive", "cat", "--dir", root, "--legacy", "--venue", "kraken_futures")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"".join(x + b"\n" for x in iter_legacy_lines(tree.root, "kraken-futures"))
    err = r.stderr.decode()
    assert err.startswith("ssmd: warning: ") and err.count("\n") == 1
    assert str(tree.truncated) in err and "Traceback" not in err


def test_cli_ls(tree: Tree) -> None:
    r = ssmd("archive", "ls", "--dir", str(tree.root), "--legacy")
    assert r.returncode == 0, r.stderr
    rows = [row.split() for row in r.stdout.decode().splitlines()]
    assert rows[0] == ["VENUE", "STREAM", "DATE", "FILE", "BYTES"]
    files = find_legacy_files(tree.root)
    assert len(rows) == len(files) + 2
    assert ["kraken", "book", DAY, "1430.jsonl.gz"] in [row[:4] for row in rows]
    assert rows[-1][:3] == ["total", str(len(files)), "files"]

    r = ssmd("archive", "ls", "--dir", str(tree.root), "--venue", "kraken", "--counts")
    assert r.returncode == 0, r.stderr
    assert "original-ssmd" in r.stderr.decode()
    rows = [row.split() for row in r.stdout.decode().splitlines()]
    assert rows[0] == ["VENUE", "STREAM", "DATE", "FILE", "BYTES", "LINES", "KINDS"]
    assert {row[0] for row in rows[1:-1]} == {"kraken"}
    book = [row for row in rows if row[:2] == ["kraken", "book"]]
    assert [(row[3], row[5], row[6]) for row in book] == [
        ("1415.jsonl.gz", "4", "book=4"),
        ("1430.jsonl.gz", "2", "book=2"),
    ]
    control = next(row for row in rows if row[:2] == ["kraken", "control"])
    assert control[5] == "8" and len(control) == 6  # eight control frames, no lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cat", "--dir", "{missing}", "--legacy"], "archive directory not found"),
        (["ls", "--dir", "{missing}", "--legacy"], "archive directory not found"),
        (["cat", "--dir", "{root}", "--legacy", "--from", "2026-13-01"], "bad --from '2026-13-01'"),
        (["cat", "--dir", "{root}", "--to", "soon"], "bad --to 'soon'"),
        (["ls", "--dir", "{root}", "--legacy", "--from", "2026-02-30"], "bad --from '2026-02-30'"),
        (["cat", "--dir", "{root}", "--legacy", "--venue", "binance"], "unknown venue 'binance'"),
        (["ls", "--dir", "{kalshi_only}", "--venue", "kraken"], "no venue 'kraken'"),
    ],
)
def test_cli_bad_input_is_one_line(
    tree: Tree, tmp_path: Path, args: list[str], message: str
) -> None:
    kalshi_only = tmp_path / "k"
    (kalshi_only / "kalshi/crypto" / DAY).mkdir(parents=True)
    (kalshi_only / "kalshi/crypto" / DAY / "1415.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    argv = [
        a.format(root=tree.root, missing=tmp_path / "missing", kalshi_only=kalshi_only)
        for a in args
    ]
    r = ssmd("archive", *argv)
    assert r.returncode == 2, r.stdout
    err = r.stderr.decode()
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith("ssmd: error: ") and message in err, err
