"""Property tests at the parser boundary: nothing crashes, bad input is counted and kept."""

from __future__ import annotations

import base64
import json
import random
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssmd.core import Processor, kraken_checksum, normalize
from ssmd.samples import kraken_checksum_reference
from ssmd.types import Venue

FIX = Path(__file__).resolve().parent.parent / "fixtures"
VENUES = tuple(v.module for v in Venue)
SAMPLES = {
    v: [
        line
        for p in sorted((FIX / v).glob("ws_*.jsonl"))
        if not p.name.endswith(".expected.jsonl")
        for line in p.read_bytes().splitlines()
    ]
    for v in VENUES
}


def _check_batch(venue: str, batch_frames: list[bytes]) -> None:
    p = Processor(venue, "prop")
    b = p.process(batch_frames, 0)
    c = p.counters()
    assert c["frames"] == len(batch_frames)
    # every archived line is one valid JSON envelope whose malformed entries keep the raw bytes
    for m in b.messages():
        env = json.loads(m["line"])
        assert env["subj"] == m["subject"] and env["conn"] == "prop"
        if m["class"] == "malformed":
            body = env["msg"]
            raw = body["raw"].encode() if "raw" in body else base64.b64decode(body["raw_b64"])
            assert any(raw in f for f in batch_frames)
    normalize(venue, batch_frames)  # must not raise either


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VENUES), st.lists(st.binary(max_size=300), max_size=8))
def test_arbitrary_bytes_never_crash(venue: str, data: list[bytes]) -> None:
    _check_batch(venue, data)


@st.composite
def mutated_frames(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    venue = draw(st.sampled_from(VENUES))
    frames = []
    for _ in range(draw(st.integers(1, 6))):
        f = bytearray(draw(st.sampled_from(SAMPLES[venue])))
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.sampled_from(("flip", "cut", "dup", "insert")))
            i = draw(st.integers(0, max(0, len(f) - 1)))
            if op == "flip" and f:
                f[i] = draw(st.integers(0, 255))
            elif op == "cut":
                del f[i:]
            elif op == "dup":
                f[i:i] = f[i : i + draw(st.integers(1, 20))]
            else:
                f[i:i] = draw(
                    st.sampled_from(
                        [b"9" * 40, b'"', b"{", b"]", b"\\u12", b"-", b"1e99999", b"\x00", b"\xc3"]
                    )
                )
        frames.append(bytes(f))
    return venue, frames


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_frames())
def test_mutated_fixture_frames_never_crash(case: tuple[str, list[bytes]]) -> None:
    venue, frames = case
    _check_batch(venue, frames)


@settings(max_examples=200)
@given(st.sampled_from(VENUES), st.data())
def test_every_sample_frame_is_accounted_for(venue: str, data: st.DataObject) -> None:
    """Valid frames: each becomes archived lines or control reports, never silently nothing."""
    frames = data.draw(st.lists(st.sampled_from(SAMPLES[venue]), min_size=1, max_size=10))
    p = Processor(venue, "prop")
    for f in frames:
        p.reset()
        b = p.process([f], 0)
        assert len(b) + len(b.controls) >= 1 or f.strip() in (b"[]",)


@st.composite
def books(draw: st.DrawFn) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal], int, int]:
    pp = draw(st.integers(0, 10))
    qp = draw(st.integers(0, 10))
    prices = draw(st.lists(st.integers(1, 10**12), min_size=2, max_size=30, unique=True))
    qtys = draw(st.lists(st.integers(1, 10**12), min_size=len(prices), max_size=len(prices)))
    levels = [
        (Decimal(p).scaleb(-pp), Decimal(q).scaleb(-qp)) for p, q in zip(prices, qtys, strict=True)
    ]
    levels.sort()
    cut = draw(st.integers(1, len(levels) - 1))
    return dict(levels[:cut]), dict(levels[cut:]), pp, qp


@settings(max_examples=300)
@given(books(), st.randoms(use_true_random=False))
def test_kraken_checksum_matches_reference(
    book: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal], int, int], rnd: random.Random
) -> None:
    bids, asks, pp, qp = book

    def text(v: Decimal, prec: int) -> str:
        # the wire trims trailing zeros, sometimes uses an exponent
        s = format(v.normalize(), "f")
        return f"{v.normalize():E}" if rnd.random() < 0.2 else s

    got = kraken_checksum(
        [(text(p, pp), text(q, qp)) for p, q in asks.items()],
        [(text(p, pp), text(q, qp)) for p, q in bids.items()],
        pp,
        qp,
    )
    assert got == kraken_checksum_reference(asks, bids, pp, qp)
