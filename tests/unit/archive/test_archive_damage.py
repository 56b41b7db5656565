"""The reader never hides data it can read: damaged, empty, open and non-regular files.

Each damaged file is built from members compressed here (``archive_damage``),
so what must come back (every line of every intact member) is known without
asking the reader.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from archive_damage import EXT, build, day_dir, line, ssmd
from ssmd.archive import (
    ArchiveReader,
    ArchiveWriter,
    ReadWarning,
    count_lines,
    iter_legacy_lines,
    iter_lines,
    list_files,
)


def read(root: Path, **kw: object) -> tuple[list[bytes], list[ReadWarning]]:
    warnings: list[ReadWarning] = []
    lines = list(iter_lines(root, "kraken", on_warning=warnings.append, **kw))  # type: ignore[arg-type]
    return lines, warnings


def stripped(lines: list[bytes]) -> list[bytes]:
    return [x.rstrip(b"\n") for x in lines]


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_a_file_truncated_half_way(tmp_path: Path, codec: str) -> None:
    b = build(codec, 0, [100] * 20)
    torn = next(m for m in b.members if m.start < len(b.data) // 2 <= m.end)
    cut = (torn.start + torn.end) // 2  # about half way, inside a member
    path = day_dir(tmp_path) / f"0000-a.{EXT[codec]}"
    path.write_bytes(b.data[:cut])
    written = [x for m in b.members for x in m.lines]
    intact = b.intact(set(), cut)

    got, warnings = read(tmp_path)
    # Every member before the cut; the torn one goes whole (its checksum
    # cannot be checked, so none of its lines is trusted).
    assert got == stripped(intact) == stripped(written[: len(got)])
    assert len(got) == 100 * b.members.index(torn)
    unit = "gzip member" if codec == "gzip" else "zstd frame"
    [w] = warnings
    assert w.file == str(path)
    assert w.reason.startswith(f"the file ends inside the {unit} at offset {torn.start} (")
    assert (w.members_dropped, w.bytes_dropped, w.lines_dropped) == (1, cut - torn.start, 0)
    assert sum(count_lines([path], on_warning=lambda _: None).values()) == len(got)


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_sixteen_flipped_bytes_cost_one_member(tmp_path: Path, codec: str) -> None:
    b = build(codec, 0, [120] * 10)
    bad = b.members[6]
    mid = (bad.start + bad.end) // 2
    data = bytearray(b.data)
    for k in range(mid, mid + 16):
        data[k] ^= 0xA5
    path = day_dir(tmp_path) / f"0000-a.{EXT[codec]}"
    path.write_bytes(bytes(data))

    got, warnings = read(tmp_path)
    assert got == stripped(b.intact(set(range(mid, mid + 16))))
    assert len(got) == 9 * 120
    [w] = warnings
    assert (w.members_dropped, w.bytes_dropped) == (1, bad.end - bad.start)
    assert f"at offset {bad.start}" in w.reason
    # The chunked reader and the counter agree.
    reader = ArchiveReader([path])
    assert stripped(b"".join(reader).splitlines(keepends=True)) == got
    assert reader.warnings == warnings
    assert sum(count_lines([path], on_warning=lambda _: None).values()) == len(got)


def test_a_stray_empty_file_hides_nothing(tmp_path: Path) -> None:
    b = build("gzip", 0, [500, 500])
    d = day_dir(tmp_path)
    (d / "0000-a.jsonl.gz").write_bytes(b.data)
    (d / "0000-b.jsonl.gz").write_bytes(b"")
    got, warnings = read(tmp_path)
    assert got == stripped(b.intact(set()))
    assert [(Path(w.file).name, w.reason) for w in warnings] == [("0000-b.jsonl.gz", "empty file")]


def test_garbage_between_and_after_members(tmp_path: Path) -> None:
    b = build("zstd", 0, [30, 30, 30])
    m = b.members
    data = b.data[: m[1].end] + b"\0" * 700 + b.data[m[1].end :] + b"(appended by a copy)"
    path = day_dir(tmp_path) / "0000-a.jsonl.zst"
    path.write_bytes(data)
    got, warnings = read(tmp_path)
    assert got == stripped(b.intact(set()))
    [w] = warnings
    assert (w.members_dropped, w.bytes_dropped) == (0, 700 + 20)


def test_open_part_files_are_read(tmp_path: Path) -> None:
    """A `.part` (being written, or left by a crash) is read to its last complete member."""
    with ArchiveWriter(tmp_path, "kraken", "done", fsync=False) as w:
        w.write(b"".join(line(i) for i in range(0, 1000, 2)))
    b = build("gzip", 1, [100, 100, 100])
    part = day_dir(tmp_path) / "0000-crashed.jsonl.gz.part"
    torn = b.data[: b.members[2].start + 40]  # the third member cut short
    part.write_bytes(torn)
    got, warnings = read(tmp_path)
    odd = [x for m in b.members[:2] for x in m.lines]
    assert got == sorted(stripped([line(i) for i in range(0, 1000, 2)] + odd), key=_rx)
    assert warnings == []  # a torn tail is what an open file has
    r = ssmd("archive", "ls", "--dir", str(tmp_path), "--counts")
    assert r.returncode == 0, r.stderr
    assert b"0000-crashed.jsonl.gz.part" in r.stdout
    assert r.stdout.splitlines()[-1].split()[-1] == f"trade={500 + 200}".encode()


def _rx(x: bytes) -> int:
    rx: int = orjson.loads(x)["rx"]
    return rx


@pytest.mark.timeout(60)
def test_non_regular_files_are_skipped_unopened(tmp_path: Path) -> None:
    b = build("gzip", 0, [50])
    d = day_dir(tmp_path)
    (d / "0000-a.jsonl.gz").write_bytes(b.data)
    os.mkfifo(d / "0015-fifo.jsonl.gz")  # opening it for reading would block
    (d / "0030-dir.jsonl.gz").mkdir()
    (d / "0045-link.jsonl.gz").symlink_to(d / "nowhere")
    (d / "0100-ok-link.jsonl.zst").symlink_to(d / "target")
    (d / "target").write_bytes(build("zstd", 50, [10]).data)
    want = stripped(b.intact(set()) + [line(i) for i in range(50, 60)])

    got, warnings = read(tmp_path)
    assert got == want
    assert [(Path(w.file).name, w.reason) for w in warnings] == [
        ("0015-fifo.jsonl.gz", "skipped: a FIFO"),
        ("0030-dir.jsonl.gz", "skipped: a directory"),
        ("0045-link.jsonl.gz", "skipped: a symbolic link to nothing"),
    ]
    for cmd in (["cat"], ["ls"], ["ls", "--counts"]):
        r = ssmd("archive", *cmd, "--dir", str(tmp_path), timeout=30)
        assert r.returncode == 0, r.stderr
        err = r.stderr.decode().splitlines()
        assert [e.split(": ")[-1] for e in err] == [
            "a FIFO",
            "a directory",
            "a symbolic link to nothing",
        ], err
        assert all(e.startswith("ssmd: warning: ") for e in err)
    r = ssmd("archive", "cat", "--dir", str(tmp_path), timeout=30)
    assert stripped(r.stdout.splitlines(keepends=True)) == want


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """Three files: truncated in a member boundary, flipped bytes, empty; and what is readable."""
    d = day_dir(tmp_path)
    a = build("gzip", 0, [40] * 5)
    (d / "0000-a.jsonl.gz").write_bytes(a.data[: a.members[3].end + 3])
    b = build("gzip", 1000, [40] * 5)
    data = bytearray(b.data)
    data[b.members[1].start + 30] ^= 0xFF
    (d / "0015-b.jsonl.gz").write_bytes(bytes(data))
    (d / "0030-c.jsonl.gz").write_bytes(b"")
    readable = a.intact(set(), a.members[3].end) + b.intact({b.members[1].start + 30})
    return tmp_path, readable


def test_cli_cat_warns_and_strict_fails_after_printing(damaged: tuple[Path, list[bytes]]) -> None:
    root, readable = damaged
    for strict in ([], ["--strict"]):
        r = ssmd("archive", "cat", "--dir", str(root), *strict)
        assert r.stdout == b"".join(readable)
        err = r.stderr.decode().splitlines()
        # In the order found: a file's warning comes when it is read to its end.
        warned = sorted(e for e in err if e.startswith("ssmd: warning: "))
        assert len(warned) == 3, err
        assert "0000-a.jsonl.gz: the file ends inside the gzip member at offset" in warned[0]
        assert warned[0].endswith("(dropped 1 member, 3 bytes)")
        assert "0015-b.jsonl.gz: bad gzip member at offset" in warned[1]
        assert "(dropped 1 member" in warned[1]
        assert warned[2].endswith("0030-c.jsonl.gz: empty file")
        if strict:
            assert r.returncode == 1
            assert err[3:] == ["ssmd: error: 3 warnings (--strict)"]
        else:
            assert r.returncode == 0 and len(err) == 3


def test_cli_ls_counts_what_cat_reads(damaged: tuple[Path, list[bytes]]) -> None:
    root, readable = damaged
    r = ssmd("archive", "ls", "--dir", str(root), "--counts")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].split()[-1] == f"trade={len(readable)}".encode()
    assert r.stderr.count(b"ssmd: warning: ") == 3
    assert ssmd("archive", "ls", "--dir", str(root), "--counts", "--strict").returncode == 1
    # Without --counts nothing is decompressed: no warning to give.
    r = ssmd("archive", "ls", "--dir", str(root), "--strict")
    assert r.returncode == 0 and r.stderr == b""
    got: list[ReadWarning] = []
    counts = count_lines(list_files(root, include_parts=True), on_warning=got.append)
    assert sum(counts.values()) == len(readable) and len(got) == 3


def test_legacy_reader_reports_damage_the_same_way(tmp_path: Path) -> None:
    """Original-layout files: same recovery, same warning type and wording."""
    frame = b'{"channel":"heartbeat"}\n'
    trade = (
        b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
        b'"price":60000.1,"qty":0.5,"ord_type":"market","trade_id":%d,'
        b'"timestamp":"2024-03-01T00:00:00.000000Z"}]}\n'
    )
    d = tmp_path / "kraken" / "spot" / "2024-03-01"
    d.mkdir(parents=True)
    members = [b"".join(trade % (10 * m + k) for k in range(10)) + frame for m in range(3)]
    blobs = [build_member(x) for x in members]
    data = bytearray(b"".join(blobs))
    data[len(blobs[0]) + 20] ^= 0xFF  # the second member
    (d / "1400.jsonl.gz").write_bytes(bytes(data))
    os.mkfifo(d / "1415.jsonl.gz")
    warnings: list[ReadWarning] = []
    lines = list(iter_legacy_lines(tmp_path, on_warning=warnings.append))
    ids = [orjson.loads(x)["msg"]["data"][0]["trade_id"] for x in lines]
    assert ids == [*range(10), *range(20, 30)]
    assert [(Path(w.file).name, w.members_dropped, w.bytes_dropped) for w in warnings] == [
        ("1415.jsonl.gz", 0, 0),
        ("1400.jsonl.gz", 1, len(blobs[1])),
    ]
    assert warnings[0].reason == "skipped: a FIFO"
    assert warnings[1].reason.startswith(f"bad gzip member at offset {len(blobs[0])}: ")


def build_member(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def test_verify_and_the_reader_agree(tmp_path: Path) -> None:
    """Over one damaged archive, ``verify`` counts per file what the reader
    reads, and reports loss with the reader's figures and reasons."""
    from ssmd.archive.verify import verify_archive

    with ArchiveWriter(tmp_path, "kraken", "w", fsync=False, max_buffer_bytes=4096) as w:
        w.write(b"".join(line(i) for i in range(0, 2000)))  # 0000-w: many members
    d = day_dir(tmp_path)
    good = (d / "0000-w.jsonl.gz").read_bytes()
    a = build("gzip", 10_000, [40] * 6)
    flipped = bytearray(a.data)
    flipped[a.members[2].start + 25] ^= 0x40
    (d / "0100-a.jsonl.gz").write_bytes(bytes(flipped))
    z = build("zstd", 20_000, [40] * 4)
    (d / "0115-z.jsonl.zst").write_bytes(z.data[: z.members[3].start + 9] + b"")
    (d / "0130-g.jsonl.gz").write_bytes(good[:100] + b"garbage" + good[100:])  # inside member 0
    (d / "0145-e.jsonl.gz").write_bytes(b"")
    os.mkfifo(d / "0200-f.jsonl.gz")
    p = build("gzip", 30_000, [40] * 3)
    (d / "0215-p.jsonl.gz.part").write_bytes(p.data[: p.members[2].start + 30])  # torn tail
    mixed = build("gzip", 40_000, [5]).data + build("gzip", 0, [0]).data
    (d / "0230-m.jsonl.gz").write_bytes(mixed + __import__("gzip").compress(b"not json\n"))

    result = verify_archive(tmp_path, "kraken")
    checks = {f.name: f for f in result.files}
    total = 0
    for path in sorted(d.iterdir()):
        if path.name == "manifest.json" or path.name.startswith("."):
            continue
        reader = ArchiveReader([path])
        n = b"".join(reader).count(b"\n")
        total += n
        fc = checks[path.name]
        warnings = reader.warnings
        assert fc.lines == n, path.name
        if warnings:
            [w] = warnings
            got = (fc.error, fc.members_dropped, fc.bytes_dropped, fc.lines_dropped)
            assert got == (w.reason, w.members_dropped, w.bytes_dropped, w.lines_dropped)
            assert not fc.ok
        else:
            assert fc.error is None, (path.name, fc.error)
    assert sum(f.lines or 0 for f in result.files) == total
    assert len(list(iter_lines(tmp_path, "kraken", on_warning=lambda _: None))) == total
    bad = sorted(f.name for f in result.files if not f.ok)
    assert bad == [
        "0100-a.jsonl.gz",
        "0115-z.jsonl.zst",
        "0130-g.jsonl.gz",
        "0145-e.jsonl.gz",
        "0200-f.jsonl.gz",
        "0230-m.jsonl.gz",
    ]
    assert checks["0215-p.jsonl.gz.part"].status == "open"
