"""The Rust core through its Python surface: routing, integrity, errors."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import subprocess
import sys
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

import ssmd.errors
from golden import FIXTURES
from ssmd import _core
from ssmd.archive import ArchiveWriter, iter_lines
from ssmd.archive.legacy import sanitize_instrument
from ssmd.core import (
    Processor,
    kraken_checksum,
    normalize,
    normalize_lines,
    subject_token,
    venues,
)
from ssmd.errors import ConfigError, ParseError, SsmdError
from ssmd.runtime.status import status_subject
from ssmd.samples import frames, kraken_checksum_reference
from ssmd.types import BookDelta, BookSnapshot, Lifecycle, Quote, Status, Trade

FIX = Path(__file__).resolve().parent.parent / "fixtures"


def lines(venue: str, name: str) -> list[bytes]:
    return (FIX / venue / name).read_bytes().splitlines()


def test_venues_listed() -> None:
    assert venues() == ["kalshi", "kraken", "kraken-futures", "polymarket"]


def test_unknown_venue_is_config_error() -> None:
    with pytest.raises(ConfigError, match='unknown venue "binance"') as exc:
        Processor("binance", "c1")
    assert isinstance(exc.value, ValueError)
    assert isinstance(exc.value, SsmdError)


def test_wrong_setup_calls_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        Processor("kalshi", "")
    with pytest.raises(ConfigError, match="set_precision does not apply to kalshi"):
        Processor("kalshi", "c").set_precision("X", 1, 1)
    with pytest.raises(ConfigError, match="set_category does not apply to kraken"):
        Processor("kraken", "c").set_categories({"KXBTCD": "Crypto"})
    with pytest.raises(ConfigError, match="set_book_depth does not apply to polymarket"):
        Processor("polymarket", "c").set_book_depth(10)
    with pytest.raises(ConfigError, match="at least 10"):
        Processor("kraken", "c").set_book_depth(5)
    with pytest.raises(ConfigError, match="2 timestamps for 1 frames"):
        Processor("kraken", "c").process([b"{}"], [1, 2])


def test_wrong_argument_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="an item of type int"):
        Processor("kraken", "c").process([1], 0)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="got int"):
        Processor("kraken", "c").process(5, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rx_ns must be"):
        Processor("kraken", "c").process([b"{}"], "now")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        normalize("kraken", [3.5])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Processor(5, "c")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        subject_token(b"x")  # type: ignore[arg-type]


def test_every_core_error_is_a_class_of_ssmd_errors() -> None:
    """Each Rust error variant resolves to the class of that name in
    ssmd.errors (TypeError for a wrong argument type): a class missing there
    fails here, never silently becoming another exception."""
    classes = _core.error_classes()
    assert set(classes) == {"ConfigError", "ParseError", "SinkError", "TypeError"}
    for name, cls in classes.items():
        if name == "TypeError":
            assert cls is TypeError
        else:
            assert cls is getattr(ssmd.errors, name)
            assert issubclass(cls, SsmdError)
    # and the raising path uses them
    with pytest.raises(ParseError):
        kraken_checksum([("x", "1")], [], 1, 1)
    with pytest.raises(ConfigError):
        Processor("kraken", "c").set_book_depth(1)


def test_str_and_bytes_frames_route_alike() -> None:
    f = '{"channel":"heartbeat"}'
    p = Processor("kraken", "c")
    assert [k for k, _ in p.process([f, f.encode()], 0).controls] == ["heartbeat", "heartbeat"]


def test_kraken_checksum_verified_values() -> None:
    """The six checksums of the fixture README, with the pairs' precisions."""
    p = Processor("kraken", "c")
    p.set_precision("BTC/USD", 1, 8)
    p.set_precision("MATIC/USD", 4, 8)
    b = p.process(lines("kraken", "ws_book.jsonl"), 0)
    assert len(b) == 6 and not b.resyncs
    c = p.counters()
    assert (c["checksum_ok"], c["checksum_mismatch"], c["checksum_inferred"]) == (6, 0, 0)


def test_kraken_trimmed_wire_text_gives_wrong_checksum() -> None:
    """MATIC/USD: the wire trims trailing zeros; only the pair precision verifies."""
    snap = json.loads(lines("kraken", "ws_book.jsonl")[4])["data"][0]
    raw = next(line for line in lines("kraken", "ws_book.jsonl") if b"MATIC" in line)
    asks = [(str(Decimal(str(a["price"]))), str(Decimal(str(a["qty"])))) for a in snap["asks"]]
    bids = [(str(Decimal(str(b["price"]))), str(Decimal(str(b["qty"])))) for b in snap["bids"]]
    assert kraken_checksum(asks, bids, 4, 8) == snap["checksum"] == 2439117997
    # the naive way: the wire text as is (documented wrong value)
    text = raw.decode()
    naive = "".join(
        t.replace(".", "").lstrip("0")
        for lvl in sorted(snap["asks"], key=lambda x: x["price"])[:10]
        + sorted(snap["bids"], key=lambda x: -x["price"])[:10]
        for t in (_wire(text, lvl["price"]), _wire(text, lvl["qty"]))
    )
    assert zlib.crc32(naive.encode()) == 3830085102 != snap["checksum"]


def _wire(text: str, value: float) -> str:
    """The number's literal as it appears on the wire (repr matches the doc's trimmed text)."""
    s = repr(value)
    assert s in text
    return s


def test_kraken_checksum_tiny_prices_and_exponents() -> None:
    asks = {Decimal("0.00001235"): Decimal("1500000"), Decimal("0.00001236"): Decimal("10")}
    bids = {Decimal("0.00001234"): Decimal("0.5")}
    ref = kraken_checksum_reference(asks, bids, 8, 4)
    assert (
        kraken_checksum(
            [("1.235e-05", "1500000"), ("0.00001236", "10.0")], [("1.234E-5", "0.50")], 8, 4
        )
        == ref
    )


def test_kraken_checksum_rejects_non_decimal() -> None:
    with pytest.raises(ParseError):
        kraken_checksum([("abc", "1")], [], 1, 1)


def test_kraken_mismatch_resyncs_only_that_symbol() -> None:
    p = Processor("kraken", "c")
    p.set_precision("BTC/USD", 1, 8)
    book = lines("kraken", "ws_book.jsonl")
    bad = book[1].replace(b'"checksum":1105488494', b'"checksum":1')
    b = p.process([book[0], bad], 0)
    assert b.resyncs == [("BTC/USD", "checksum")]
    status = [m for m in b.messages() if m["kind"] == "status"]
    assert len(status) == 1 and status[0]["subject"] == "prod.kraken.json.status.BTC_USD"
    assert json.loads(status[0]["msg"]) == {
        "ssmd": "resync",
        "reason": "checksum",
        "expected": 1,
        "computed": 1105488494,
    }
    # the book is unsynced until a new snapshot: later updates are counted, not re-flagged
    p.process([book[2]], 0)
    assert p.counters()["checksum_unverified"] == 1
    p.process([book[0]], 0)
    assert p.counters()["checksum_ok"] == 2


def test_kraken_precision_inferred_when_unknown() -> None:
    p = Processor("kraken", "c")
    p.process(lines("kraken", "ws_book.jsonl"), 0)
    c = p.counters()
    assert c["checksum_ok"] == 6 and c["checksum_inferred"] == 6


def _kalshi_book(seq: int, ticker: str = "KXA-1", sid: int = 7) -> bytes:
    return json.dumps(
        {
            "type": "orderbook_delta",
            "sid": sid,
            "seq": seq,
            "msg": {
                "market_ticker": ticker,
                "price_dollars": "0.5",
                "delta_fp": "1.00",
                "side": "yes",
            },
        }
    ).encode()


def test_kalshi_book_gap_resyncs_every_market_of_the_sid() -> None:
    p = Processor("kalshi", "conn-1")
    b = p.process([_kalshi_book(1, "KXA-1"), _kalshi_book(2, "KXA-2"), _kalshi_book(5, "KXA-1")], 0)
    assert sorted(b.resyncs) == [("KXA-1", "seq_gap"), ("KXA-2", "seq_gap")]
    gap = next(
        json.loads(m["msg"]) for m in b.messages() if m["kind"] == "status" and b'"gap"' in m["msg"]
    )
    assert gap == {
        "ssmd": "gap",
        "sid": 7,
        "expected": 3,
        "got": 5,
        "missing": 2,
        "instrument": "KXA-1",
        "feed": "book",
    }
    assert p.counters()["gaps"] == 1


def test_kalshi_reset_starts_sequences_again() -> None:
    p = Processor("kalshi", "c")
    p.process([_kalshi_book(10)], 0)
    p.reset()  # reconnect: sids and seqs restart
    b = p.process([_kalshi_book(1)], 0)
    assert b.counts["status"] == 0 and p.counters()["gaps"] == 0


def test_kalshi_duplicates_dropped_and_recorded() -> None:
    p = Processor("kalshi", "c")
    b = p.process([_kalshi_book(1), _kalshi_book(2), _kalshi_book(2)], 0)
    assert b.counts == {"data": 2, "unknown": 0, "status": 1, "malformed": 0, "control": 0}
    assert p.counters()["duplicates"] == 1


def test_futures_trade_gap() -> None:
    t = '{{"feed":"trade","product_id":"PF_XBTUSD","uid":"u{0}","side":"buy","seq":{0},"time":1,"qty":1,"price":1}}'
    p = Processor("kraken-futures", "c")
    b = p.process([t.format(s) for s in (1, 2, 4)], 0)
    assert p.counters()["gaps"] == 1 and not b.resyncs


def test_message_ids_are_frame_and_index() -> None:
    p = Processor("polymarket", "pm-3")
    arr = lines("polymarket", "ws_array.jsonl")[0]
    p.process([b"PONG"], 0)
    ids = [m["msg_id"] for m in p.process([arr], 0).messages()]
    assert ids == ["pm-3:1.0", "pm-3:1.1"]


def test_groups_keep_per_subject_order() -> None:
    p = Processor("kraken-futures", "c")
    fs = frames("kraken_futures", 500)
    b = p.process(fs, list(range(len(fs))))
    groups = b.groups()
    assert sum(n for _, _, n, _ in groups) == len(b)
    for subject, blob, n, _ in groups:
        rows = [json.loads(x) for x in blob.splitlines()]
        assert len(rows) == n and all(r["subj"] == subject for r in rows)
        assert [r["rx"] for r in rows] == sorted(r["rx"] for r in rows)


def test_subjects_count_what_groups_hold() -> None:
    for venue in ("kalshi", "kraken", "kraken_futures", "polymarket"):
        b = Processor(venue, "c").process(frames(venue, 800), 0)
        groups = b.groups()
        assert b.subjects() == [(s, n, len(blob)) for s, blob, n, _ in groups]
        assert sorted(b"".join(blob for _, blob, _, _ in groups).splitlines()) == sorted(
            b.lines().splitlines()
        )
    one = Processor("kraken", "c").process(frames("kraken", 1), 0)
    (g,) = one.groups()
    assert g[1] == one.lines() and g[2] == len(one) and g[3] == "c:0.0"


def test_samples_process_cleanly() -> None:
    """The demo/bench generators produce valid, gap-free, checksum-correct data."""
    for venue in ("kalshi", "kraken", "kraken_futures", "polymarket"):
        p = Processor(venue, "c")
        p.process(frames(venue, 3000), 0)
        c = p.counters()
        assert c["malformed"] == c["unknown"] == c["gaps"] == c["checksum_mismatch"] == 0, (
            venue,
            c,
        )
    assert c["data"] >= 3000


def test_normalize_round_trips_to_typed_records() -> None:
    recs = normalize("kalshi", lines("kalshi", "ws_trade.jsonl"))
    assert [type(r) for r in recs] == [Trade, Trade, Trade]
    t = recs[2]
    assert isinstance(t, Trade)
    assert (t.price, t.size, t.side, t.ts) == ("0.3600", "136.00", "sell", 1669149841000)
    assert t.price_dec == Decimal("0.36")
    q = normalize("kraken", lines("kraken", "ws_ticker.jsonl"))[0]
    assert isinstance(q, Quote) and q.mid_dec == (Decimal("0.10025") + Decimal("0.10036")) / 2
    s = normalize("polymarket", lines("polymarket", "ws_book.jsonl"))[0]
    assert isinstance(s, BookSnapshot) and s.bids[0] == (".50", "15")


def test_replay_mode_takes_a_backward_sequence_as_a_reconnect() -> None:
    frames = [_kalshi_book(s) for s in (7, 8, 1, 2)]
    live = Processor("kalshi", "c")
    assert live.process(frames, 0).counts["data"] == 2  # 1 and 2 look like duplicates live
    replay = Processor("kalshi", "c", replay=True)
    assert replay.replay
    b = replay.process(frames, 0)
    assert b.counts["data"] == 4
    restart = [json.loads(m["msg"]) for m in b.messages() if m["kind"] == "status"]
    assert restart == [{"ssmd": "restart", "sid": 7, "last": 8, "seq": 1}]
    assert replay.counters()["restarts"] == 1 and replay.counters()["duplicates"] == 0


def test_forget_drops_an_instruments_state() -> None:
    p = Processor("kraken", "c")
    p.set_precision("BTC/USD", 1, 8)
    book = lines("kraken", "ws_book.jsonl")
    p.process(book[:2], 0)
    assert p.counters()["checksum_ok"] == 2
    p.forget(["BTC/USD"])  # moved to another connection: the book is gone
    p.process([book[2]], 0)  # an update without a snapshot cannot be verified
    assert p.counters()["checksum_unverified"] == 1
    t = '{{"feed":"trade","product_id":"PF_XBTUSD","uid":"u{0}","side":"buy","seq":{0},"time":1,"qty":1,"price":1}}'
    f = Processor("kraken-futures", "c")
    f.process([t.format(100)], 0)
    f.forget(["PF_XBTUSD"])
    f.process([t.format(5)], 0)  # a fresh baseline, not a duplicate
    assert f.counters()["duplicates"] == 0 and f.counters()["gaps"] == 0


# --- hostile input (issue 13): never raise for a bad frame, linear work, bounded frames


def test_lone_surrogate_frame_is_malformed_and_the_batch_is_kept() -> None:
    good = '{"event_type":"last_trade_price","market":"0x1","asset_id":"7","price":"0.5"}'
    bad = '{"event_type":"book","market":"0x\ud800"}'
    p = Processor("polymarket", "c")
    b = p.process([good, bad, good.encode()], 1)
    assert [m["class"] for m in b.messages()] == ["data", "malformed", "data"]
    body = json.loads(b.messages()[1]["msg"])
    assert body["error"] == "invalid UTF-8"
    # the frame's code units, kept as surrogatepass UTF-8
    assert base64.b64decode(body["raw_b64"]) == bad.encode("utf-8", "surrogatepass")
    assert p.counters()["malformed"] == 1
    # normalize skips it the same way instead of raising
    assert len(normalize("polymarket", [bad, good])) == 1


@pytest.mark.parametrize("venue", ["kalshi", "kraken", "kraken-futures", "polymarket"])
def test_lone_surrogate_never_raises_on_any_venue(venue: str) -> None:
    b = Processor(venue, "c").process(["\udcff", "x\ud83d"], 1)
    assert b.counts["malformed"] == 2


def test_oversized_frame_is_malformed_with_its_reason() -> None:
    p = Processor("polymarket", "c", max_frame_bytes=100)
    assert p.max_frame_bytes == 100
    assert Processor("kalshi", "c").max_frame_bytes == 16 * 1024 * 1024
    big = b"[" + b",".join([b'{"event_type":"book","market":"0x1"}'] * 10) + b"]"
    b = p.process([big, b"PONG"], 1)
    (m,) = b.messages()
    assert m["class"] == "malformed"
    body = json.loads(m["msg"])
    assert body["error"] == "frame too large" and body["raw"] == big.decode()
    assert p.tape_visits == 0  # not parsed
    assert [k for k, _ in b.controls] == ["pong"]


def test_empty_polymarket_array_is_counted_as_control() -> None:
    p = Processor("polymarket", "c")
    b = p.process([b"[]"], 1)
    assert len(b) == 0 and b.controls == [("empty", b"[]")]
    assert b.counts["control"] == 1 and p.counters()["control"] == 1


def test_polymarket_array_routing_work_is_linear() -> None:
    el = '{"event_type":"last_trade_price","market":"0xab","asset_id":"1","price":"0.5","timestamp":"6"}'
    per = []
    for n in (1_000, 30_000):
        p = Processor("polymarket", "c")
        b = p.process(["[" + ",".join([el] * n) + "]"], 1)
        assert len(b) == n
        per.append(p.tape_visits / n)
    # work per element does not grow with the frame (it was O(n) per element)
    assert per[1] <= per[0] * 1.01, per


# --- subject tokens (docs/bus.md): one rule, from the processor to the --instrument filter

ODD_INSTRUMENTS = [
    "ÉTH/USD",
    "KXBTCD-26MAR1317-T65499.99",
    "BTC USD",
    "A>B*C",
    "tab\there",
    'quo"te\\back',
    "x" * 5000,
    "é" * 2500,  # 5 000 bytes of 2-byte characters
    "0x" + "ab." * 60,  # just over 128 bytes after mapping
]


def test_subject_token_rule() -> None:
    assert subject_token("ÉTH/USD") == "ÉTH_USD"
    assert subject_token("a.b*c>d e/f\tg\u3000h") == "a_b_c_d_e_f_g_h"
    assert subject_token('q"b\\c\x01') == "q_b_c_"
    long = subject_token("x" * 5000)
    digest = hashlib.sha256(b"x" * 5000).hexdigest()[:16]
    assert long == "x" * 111 + "~" + digest and len(long.encode()) == 128
    # cut on a character boundary: byte 111 is inside an "é"
    cut = subject_token("é" * 2500)
    assert cut == "é" * 55 + "~" + hashlib.sha256(("é" * 2500).encode()).hexdigest()[:16]
    for i in ODD_INSTRUMENTS:
        assert subject_token(subject_token(i)) == subject_token(i)  # tokens map to themselves
    assert subject_token("") == "_"


def test_odd_instruments_round_trip_through_the_archive(tmp_path: Path) -> None:
    """process → archive write → subject → instrument filter, for every odd id."""
    p = Processor("kraken", "c1")
    frames = [
        json.dumps(
            {"channel": "ticker", "type": "update", "data": [{"symbol": inst, "bid": 1.5}]}
        ).encode()
        for inst in ODD_INSTRUMENTS
    ]
    batch = p.process(frames, 1_700_000_000_000_000_000)
    subjects = [m["subject"] for m in batch.messages()]
    assert subjects == [f"prod.kraken.json.ticker.{subject_token(i)}" for i in ODD_INSTRUMENTS]
    assert all(len(s.rsplit(".", 1)[1].encode()) <= 128 for s in subjects)
    # a status line about the instrument lands on the same token
    for inst, subj in zip(ODD_INSTRUMENTS, subjects, strict=True):
        assert status_subject("prod", "kraken", inst).rsplit(".", 1)[1] == subj.rsplit(".", 1)[1]
    with ArchiveWriter(tmp_path, "kraken", "w", fsync=False) as w:
        w.write(batch.lines())
    lines = batch.lines().splitlines()
    for inst, line in zip(ODD_INSTRUMENTS, lines, strict=True):
        assert list(iter_lines(tmp_path, "kraken", instruments=[inst])) == [line], inst
        assert list(iter_lines(tmp_path, "kraken", instruments=[subject_token(inst)])) == [line]
        # the original-ssmd reader's filter maps the same way
        assert sanitize_instrument(inst) == subject_token(inst)


def test_a_missing_error_class_fails_loudly() -> None:
    """No fallback: with SinkError gone from ssmd.errors, resolving it fails."""
    code = (
        "import ssmd.errors\n"
        "del ssmd.errors.SinkError\n"
        "from ssmd import _core\n"
        "try:\n"
        "    _core.error_classes()\n"
        "except BaseException as e:\n"
        "    print(type(e).__name__, e)\n"
        "else:\n"
        "    print('resolved')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "resolved" not in r.stdout
    assert "SinkError" in r.stdout + r.stderr


def test_record_dataclasses_match_the_rust_structs() -> None:
    """ssmd.types loads normalized lines into dataclasses whose fields must be
    the Rust structs' fields, in the same order (rust/records.rs)."""
    rust = _core.record_fields()
    python = {
        "trade": Trade,
        "quote": Quote,
        "book_snapshot": BookSnapshot,
        "book_delta": BookDelta,
        "lifecycle": Lifecycle,
        "status": Status,
    }
    assert set(rust) == set(python)
    for kind, cls in python.items():
        assert [f.name for f in dataclasses.fields(cls)] == rust[kind], kind
    # and every key of a normalized line is a field, in that order
    line = normalize_lines(
        "kraken",
        [
            b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
            b'"price":1.5,"qty":2,"ord_type":"limit","trade_id":7,'
            b'"timestamp":"2026-01-01T00:00:00.000000Z"}]}'
        ],
    )
    assert list(json.loads(line)) == ["type", *rust["trade"]]


def test_a_long_or_empty_kalshi_category_still_makes_a_subject() -> None:
    """A category from the venue's REST API of any length is cut and hashed like an
    instrument token; an empty one is ``unknown``: the series' messages are never refused."""
    frame = (FIXTURES / "kalshi" / "ws_trade.jsonl").read_bytes().splitlines()[0]
    subjects = []
    for category in ("Economics " * 500, ""):
        p = Processor("kalshi", "c1")
        p.set_category("KXBTCD", category)
        (msg,) = p.process([frame], 1_700_000_000_000_000_000).messages()
        subjects.append(msg["subject"])
    long, empty = (s.split(".")[2] for s in subjects)
    assert len(long) <= 128 and long.startswith("economics-economics-") and "~" in long
    assert empty == "unknown"
    assert all(len(s.encode()) < 512 for s in subjects)
