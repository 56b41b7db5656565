"""Fuzz-style property test: damaged archives never hide an intact member, never hang.

Hypothesis builds a venue directory of several files (gzip or zstd members
compressed here, finalized or ``.part``), damages them at random (truncate,
flip bytes, zero a block, append or insert garbage), and adds empty files,
empty ``.part`` files, a FIFO, a directory and a dangling symlink with
archive names. Whatever it does, the reader must return every line of every
member it left intact, in ``rx`` order, and the counter must count what the
reader returns; a FIFO that were opened would block the test until its
timeout. Many of these cases never come from ssmd's own writer: a disk, a
copy or another tool can make them all the same.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive_damage import EXT, Built, build, day_dir
from ssmd.archive import ReadWarning, count_lines, iter_lines, list_files

Damage = tuple[str, float, int, bytes]

damages = st.tuples(
    st.sampled_from(["truncate", "flip", "zero", "append", "insert"]),
    st.floats(0, 1),
    st.integers(1, 600),
    st.binary(min_size=1, max_size=200),
)
files = st.lists(
    st.tuples(
        st.sampled_from(["gzip", "zstd"]),
        st.lists(st.integers(1, 25), min_size=1, max_size=6),
        st.booleans(),  # a .part file
        st.lists(damages, max_size=3),
    ),
    min_size=1,
    max_size=4,
)
extras = st.lists(st.sampled_from(["empty", "empty-part", "fifo", "dir", "dangling"]), max_size=4)


@dataclass
class Damaged:
    data: bytes
    intact: list[bytes]


def damage(b: Built, ops: list[Damage]) -> Damaged:
    """Apply ``ops`` in order, tracking which members stay untouched."""
    data = bytearray(b.data)
    spans = [[m.start, m.end] for m in b.members]
    hit = [False] * len(spans)
    for op, where, n, junk in ops:
        at = int(where * len(data))
        if op == "truncate":
            del data[at:]
            hit = [h or e > at for h, (_, e) in zip(hit, spans, strict=True)]
        elif op in ("flip", "zero"):
            end = min(at + n, len(data))
            for k in range(at, end):
                data[k] = data[k] ^ 0xFF if op == "flip" else 0
            hit = [h or (s < end and at < e) for h, (s, e) in zip(hit, spans, strict=True)]
        elif op == "append":
            data += junk
        else:  # insert at the member boundary nearest to `at`
            bound = min((s for s, _ in spans), key=lambda s: abs(s - at), default=0)
            data[bound:bound] = junk
            for span in spans:
                if span[0] >= bound:
                    span[0] += len(junk)
                    span[1] += len(junk)
    intact = [x for m, h in zip(b.members, hit, strict=True) if not h for x in m.lines]
    return Damaged(bytes(data), intact)


def rx(line: bytes) -> int:
    value: int = orjson.loads(line)["rx"]
    return value


@pytest.mark.timeout(600)
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(files=files, extras=extras)
def test_every_intact_member_is_read_in_rx_order(
    files: list[tuple[str, list[int], bool, list[Damage]]], extras: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        d = day_dir(root)
        intact: list[bytes] = []
        written: set[bytes] = set()
        for k, (codec, sizes, part, ops) in enumerate(files):
            b = build(codec, k * 10_000, sizes)
            written.update(x for m in b.members for x in m.lines)
            hurt = damage(b, ops)
            intact += hurt.intact
            name = f"{k:02d}00-w.{EXT[codec]}" + (".part" if part else "")
            (d / name).write_bytes(hurt.data)
        for k, extra in enumerate(extras):
            path = d / f"23{k:02d}-x.jsonl.gz"
            if extra == "empty":
                path.write_bytes(b"")
            elif extra == "empty-part":
                path.with_name(path.name + ".part").write_bytes(b"")
            elif extra == "fifo":
                os.mkfifo(path)
            elif extra == "dir":
                path.mkdir()
            else:
                path.symlink_to(d / "nowhere")

        warnings: list[ReadWarning] = []
        got = [x + b"\n" for x in iter_lines(root, "kraken", on_warning=warnings.append)]

        rxs = [rx(x) for x in got]
        assert rxs == sorted(rxs)
        missing = set(intact) - set(got)
        assert not missing, f"{len(missing)} lines of intact members not read"
        assert len(got) >= len(intact)
        # Only members whose checksum passed are read: never a changed line.
        assert set(got) <= written
        counted: list[ReadWarning] = []
        counts = count_lines(list_files(root, include_parts=True), on_warning=counted.append)
        assert sum(counts.values()) == len(got)
        assert sorted(map(str, counted)) == sorted(map(str, warnings))
        skipped = sum(e in ("empty", "fifo", "dir", "dangling") for e in extras)
        assert len(warnings) >= skipped
        if not any(ops for *_, ops in files):
            assert len(warnings) == skipped
            assert len(got) == len(intact)
