"""The archive writer and reader through the ``ssmd._core`` bindings."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import orjson
import pytest
import zstandard

from archive_helpers import SEC, SUBJECTS, T0, envelope, numbered
from ssmd.archive import (
    ArchiveReader,
    ArchiveWriter,
    ReadWarning,
    count_lines,
    iter_lines,
    list_files,
    read_manifest,
)
from ssmd.errors import ConfigError, SinkError


def read_back(files: list[str], **filters: object) -> bytes:
    return b"".join(ArchiveReader(files, **filters))  # type: ignore[arg-type]


def gzip_members(data: bytes) -> int:
    """Count gzip members by walking the stream with zlib."""
    import zlib

    n = 0
    while data:
        d = zlib.decompressobj(wbits=31)
        d.decompress(data)
        assert d.eof
        data = d.unused_data
        n += 1
    return n


def test_round_trip_one_member_per_flush(tmp_path: Path) -> None:
    lines = [numbered(i) for i in range(300)]
    with ArchiveWriter(tmp_path, "kraken", "h1") as w:
        for batch in range(3):
            chunk = b"".join(lines[batch * 100 : (batch + 1) * 100])
            assert w.write(chunk) == 100
            assert w.flush() == 100
        assert w.flush() == 0
        assert w.path is not None and w.path.endswith("kraken/2024-03-01/0000-h1.jsonl.gz.part")
        assert (w.lines_written, w.members) == (300, 3)
        assert w.bytes_in == sum(map(len, lines))
        part = Path(w.path)
    assert w.path is None
    assert not part.exists()
    files = list_files(tmp_path)
    assert files == [str(tmp_path / "kraken/2024-03-01/0000-h1.jsonl.gz")]
    data = Path(files[0]).read_bytes()
    assert w.bytes_out == len(data)
    assert gzip_members(data) == 3
    assert gzip.decompress(data) == b"".join(lines)
    assert read_back(files) == b"".join(lines)
    assert list(iter_lines(tmp_path)) == [line.rstrip(b"\n") for line in lines]


def test_chunks_hold_complete_lines(tmp_path: Path) -> None:
    lines = [numbered(i) for i in range(1000)]
    with ArchiveWriter(tmp_path, "kraken", "h1") as w:
        w.write(b"".join(lines))
    chunks = list(ArchiveReader(list_files(tmp_path), chunk_lines=64))
    assert len(chunks) == 16
    assert all(c.endswith(b"\n") and c.count(b"\n") <= 64 for c in chunks)
    assert b"".join(chunks) == b"".join(lines)


def test_rotation_suffix_and_manifest(tmp_path: Path) -> None:
    a = envelope(T0 + 899 * SEC, SUBJECTS[0], "{}", seq=10)
    gap = envelope(T0 + 900 * SEC, "prod.kraken.json.status.conn-1", '{"ssmd":"gap","lost":3}')
    b = envelope(T0 + 901 * SEC, SUBJECTS[1], "{}", seq=12)
    late = envelope(T0 + 5 * SEC, SUBJECTS[1], "{}", seq=11)
    with ArchiveWriter(tmp_path, "kraken", "h1", rotation_secs=900) as w:
        w.write(a)
        first = w.path
        w.write(gap + b + late)
        assert w.path != first and w.path is not None and w.path.endswith("0015-h1.jsonl.gz.part")
    # A restart in the same window takes the next free suffix.
    with ArchiveWriter(tmp_path, "kraken", "h1") as w:
        w.write(envelope(T0 + 950 * SEC, SUBJECTS[0], "{}"))
    names = [Path(f).name for f in list_files(tmp_path, "kraken", "2024-03-01", "2024-03-01")]
    assert names == ["0000-h1.jsonl.gz", "0015-h1-01.jsonl.gz", "0015-h1.jsonl.gz"]

    m = read_manifest(tmp_path, "kraken", "2024-03-01")
    assert (m["venue"], m["date"]) == ("kraken", "2024-03-01")
    entries = {f["name"]: f for f in m["files"]}
    assert set(entries) == set(names)
    e = entries["0015-h1.jsonl.gz"]
    path = tmp_path / "kraken/2024-03-01" / e["name"]
    assert e["lines"] == 3
    assert e["bytes"] == path.stat().st_size
    assert e["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (e["first_rx"], e["last_rx"]) == (T0 + 5 * SEC, T0 + 901 * SEC)
    assert (e["first_seq"], e["last_seq"]) == (11, 12)
    assert e["gaps"] == [{"rx": T0 + 900 * SEC, "subj": "prod.kraken.json.status.conn-1"}]
    assert e["codec"] == "gzip"
    assert entries["0015-h1-01.jsonl.gz"]["first_seq"] is None
    assert read_manifest(tmp_path, "kraken", "2024-03-02")["files"] == []


def test_two_writers_share_the_manifest_and_merge_by_rx(tmp_path: Path) -> None:
    lines = [numbered(i) for i in range(2000)]
    wa = ArchiveWriter(tmp_path, "kraken", "a", rotation_secs=60)
    wb = ArchiveWriter(tmp_path, "kraken", "b", rotation_secs=60)
    for i, line in enumerate(lines):
        (wa if i % 3 else wb).write(line)
        if i % 100 == 0:
            wa.flush()
    wa.close()
    wb.close()
    files = list_files(tmp_path)
    assert len(files) == 2
    assert read_back(files) == b"".join(lines)
    m = read_manifest(tmp_path, "kraken", "2024-03-01")
    assert sorted(f["name"] for f in m["files"]) == ["0000-a.jsonl.gz", "0000-b.jsonl.gz"]
    assert sum(f["lines"] for f in m["files"]) == 2000


def test_reader_filters(tmp_path: Path) -> None:
    lines = [numbered(i) for i in range(400)]
    with ArchiveWriter(tmp_path, "kraken", "h1") as w:
        w.write(b"".join(lines))
    files = list_files(tmp_path)

    def expect(pred: object) -> bytes:
        return b"".join(x for x in lines if pred(orjson.loads(x)))  # type: ignore[operator]

    assert read_back(files, kinds=["trade"]) == expect(lambda d: ".trade." in d["subj"])
    assert read_back(files, kinds="book") == expect(lambda d: ".book." in d["subj"])
    btc = expect(lambda d: d["subj"].endswith(".BTC_USD"))
    assert read_back(files, instruments={"BTC/USD"}) == btc
    assert read_back(files, instruments=["BTC_USD"]) == btc
    assert read_back(files, kinds=["book"], instruments=["ETH/USD", "SOL USD"]) == expect(
        lambda d: d["subj"].endswith("book.ETH_USD")
    )
    lo, hi = T0 + 100_000, T0 + 200_000
    assert read_back(files, rx_from=lo, rx_to=hi) == expect(lambda d: lo <= d["rx"] < hi)
    assert read_back(files, rx_from=T0 + 10**15) == b""
    assert list(iter_lines(tmp_path, kinds=["ticker"], instruments=["SOL/USD"])) == [
        x.rstrip(b"\n") for x in lines if b".ticker." in x
    ]
    counts = count_lines(files)
    assert counts == {s: 100 for s in SUBJECTS}


def test_zstd_round_trip(tmp_path: Path) -> None:
    lines = [numbered(i) for i in range(500)]
    with ArchiveWriter(tmp_path, "kraken", "h1", codec="zstd", level=3) as w:
        w.write(b"".join(lines[:250]))
        w.flush()
        w.write(b"".join(lines[250:]))
    files = list_files(tmp_path)
    assert [Path(f).name for f in files] == ["0000-h1.jsonl.zst"]
    raw = Path(files[0]).read_bytes()
    out = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read()
    assert out == b"".join(lines)
    assert read_back(files) == b"".join(lines)
    assert read_manifest(tmp_path, "kraken", "2024-03-01")["files"][0]["codec"] == "zstd"


def test_auto_flush_bound(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, "kraken", "h1", max_buffer_bytes=1000, fsync=False) as w:
        w.write(b"".join(numbered(i) for i in range(100)))
        assert w.members >= 8
        assert w.flush() == 100


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="codec"):
        ArchiveWriter(tmp_path, "kraken", "h1", codec="lz4")
    with pytest.raises(ConfigError, match="level"):
        ArchiveWriter(tmp_path, "kraken", "h1", level=42)
    with pytest.raises(ConfigError, match="writer name"):
        ArchiveWriter(tmp_path, "kraken", "a/b")
    w = ArchiveWriter(tmp_path, "kraken", "h1")
    with pytest.raises(SinkError, match="already open"):
        ArchiveWriter(tmp_path, "kraken", "h1")
    with pytest.raises(SinkError, match="newline"):
        w.write(numbered(1).rstrip(b"\n"))
    with pytest.raises(SinkError, match="line 2"):
        w.write(numbered(1) + b'{"a":1}\n')
    assert w.lines_written == 0
    with pytest.raises(TypeError):
        w.write("text")  # type: ignore[arg-type]
    w.close()
    w.close()
    with pytest.raises(SinkError, match="closed"):
        w.write(numbered(1))
    with pytest.raises(ConfigError, match="not found"):
        list_files(tmp_path / "missing")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        list_files(tmp_path, date_from="2024-02-30")
    with pytest.raises(ConfigError):
        read_manifest(tmp_path, "kraken", "yesterday")
    bad = tmp_path / "kraken/2024-03-01/0000-x.jsonl.gz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(gzip.compress(b"not an envelope\n"))
    # A line that is not an envelope is dropped with a warning, not an error.
    reader = ArchiveReader([str(bad)])
    assert b"".join(reader) == b""
    [w] = reader.warnings
    assert (w.file, w.members_dropped, w.bytes_dropped, w.lines_dropped) == (str(bad), 0, 0, 1)
    assert w.reason == "1 line is not an envelope line (first: line 1)"
    assert str(w) == f"{bad}: 1 line is not an envelope line (first: line 1) (dropped 1 line)"
    got: list[ReadWarning] = []
    assert count_lines([str(bad)], on_warning=got.append) == {}
    assert got == [w]
    (bad.parent / "manifest.json").write_text("{")
    with pytest.raises(SinkError, match="invalid manifest"):
        read_manifest(tmp_path, "kraken", "2024-03-01")
