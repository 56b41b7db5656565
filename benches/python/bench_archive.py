"""Archive throughput: the Rust writer against Python's ``gzip`` module, and
the Rust reader and ``verify`` scanner against reading with Python's ``gzip``.

All use the same JSONL: envelope lines (docs/bus.md) built from the venue
fixtures of this repository (``tests/fixtures/<venue>/ws_*.jsonl``, the raw
frames; a missing fixture tree is an error, never a silent stand-in) with
every short numeric field (prices, sizes, timestamps, sequence numbers)
varied by a seeded generator, and ``rx`` increasing, so the input is not
trivially repetitive. About 32 MB in a timed run, 1 MB under
``--benchmark-disable`` (the smoke run of ``make test``).

``extra_info`` records ``mb_per_s`` (MB of JSONL input per second, one
core), ``ratio`` (input bytes / compressed bytes) and ``correct`` (the file
decompresses to the input).

Timed run: ``python -m pytest benches/python/bench_archive.py --benchmark-only``
after ``maturin develop --release``.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from pathlib import Path
from typing import Any

import pytest

from ssmd.archive import ArchiveReader, ArchiveWriter, list_files
from ssmd.archive.verify import verify_archive

TIMED_BYTES = 32 << 20
SMOKE_BYTES = 1 << 20
CALL_BYTES = 64 << 10  # bytes handed to the writer per call, like a batch of messages
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z

_MASK = (1 << 64) - 1
_KINDS = ("trade", "book", "ticker", "price_change", "lifecycle")


class _Rng:
    """SplitMix64, the generator of ``benches/rust/archive.rs``."""

    def __init__(self, seed: int) -> None:
        self.state = seed

    def below(self, n: int) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return (z ^ (z >> 31)) % n


FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def fixture_files() -> list[Path]:
    """The raw frame files, ``tests/fixtures/<venue>/ws_<channel>.jsonl``, sorted."""
    return sorted(
        p for p in FIXTURES.glob("*/ws_*.jsonl") if not p.name.endswith(".expected.jsonl")
    )


def _frames() -> list[tuple[str, bytes]]:
    frames = []
    for path in fixture_files():
        venue = path.parent.name.replace("_", "-")
        frames += [(venue, line) for line in path.read_bytes().split(b"\n") if line.strip()]
    if not frames:
        raise FileNotFoundError(f"no fixture frames in {FIXTURES}/<venue>/ws_*.jsonl")
    return frames


class _Template:
    """A fixture frame cut into literal bytes and short numeric fields."""

    def __init__(self, venue: str, frame: bytes) -> None:
        self.venue = venue.encode()
        self.kind = next((k for k in _KINDS if k.encode() in frame), "status").encode()
        self.frame = frame
        # [start, end, keep, walk]: walk is the varied low digits' value, or
        # -1 for an epoch time (follows rx).
        self.fields: list[list[int]] = []
        digits = b"0123456789"
        i = 1
        while i < len(frame):
            if not (frame[i] in digits and frame[i - 1] in b':".,['):
                i += 1
                continue
            j = i
            while j < len(frame) and frame[j] in digits:
                j += 1
            time = 10 <= j - i <= 19 and frame[i] == ord("1")
            if (time or j - i <= 12) and (j == len(frame) or frame[j] in b'",}].'):
                keep = max(j - i - 3, 1 if j - i > 1 else 0)
                walk = -1 if time else int(frame[i + keep : j])
                self.fields.append([i, j, keep, walk])
            i = j


@functools.cache
def market_data(size: int) -> bytes:
    """About ``size`` bytes of envelope lines, deterministic and byte for byte
    the same as ``market_data`` in ``benches/rust/archive.rs``: a random
    fixture frame per line, ``rx`` advancing 0-2 ms, each numeric field
    walking by -5..=5 in its last three digits half of the time, epoch times
    following ``rx``."""
    templates = [_Template(v, f) for v, f in _frames()]
    rng = _Rng(42)
    out: list[bytes] = []
    total, rx = 0, T0
    while total < size:
        t = templates[rng.below(len(templates))]
        rx += rng.below(2_000_000)
        conn = rng.below(4)
        inst = rng.below(40)
        parts = [
            b'{"rx":%d,"conn":"%s-%d","subj":"prod.%s.json.%s.INST-%02d","msg":'
            % (rx, t.venue, conn, t.venue, t.kind, inst)
        ]
        at = 0
        for field in t.fields:
            start, end, keep, walk = field
            parts.append(t.frame[at:start])
            width = end - start
            if walk < 0:
                parts.append(b"%d" % (rx // 10 ** (19 - width)))
            else:
                modulus = 10 ** (width - keep)
                if rng.below(2) == 1:
                    walk = field[3] = (walk + rng.below(11) + modulus - 5) % modulus
                parts.append(t.frame[start : start + keep] + b"%0*d" % (width - keep, walk))
            at = end
        parts.append(t.frame[at:] + b"}\n")
        line = b"".join(parts)
        out.append(line)
        total += len(line)
    return b"".join(out)


def _calls(data: bytes) -> list[bytes]:
    """``data`` cut into ~64 KiB runs of whole lines."""
    calls, start = [], 0
    while start < len(data):
        end = data.find(b"\n", min(start + CALL_BYTES, len(data) - 1)) + 1
        calls.append(data[start:end])
        start = end
    return calls


def _workload(benchmark: Any) -> tuple[bytes, list[bytes]]:
    data = market_data(SMOKE_BYTES if benchmark.disabled else TIMED_BYTES)
    return data, _calls(data)


def _record(benchmark: Any, data: bytes, compressed: int, correct: bool) -> None:
    benchmark.extra_info["input_bytes"] = len(data)
    benchmark.extra_info["ratio"] = round(len(data) / compressed, 2)
    benchmark.extra_info["correct"] = correct
    if not benchmark.disabled and benchmark.stats:
        benchmark.extra_info["mb_per_s"] = round(len(data) / benchmark.stats.stats.mean / 1e6, 1)
    assert correct


def _rounds(benchmark: Any) -> int:
    return 1 if benchmark.disabled else 5


@pytest.mark.benchmark(group="archive-write")
@pytest.mark.parametrize("codec_level", ["gzip-1", "gzip-3", "gzip-6", "zstd-1"])
def test_rust_writer(benchmark: Any, tmp_path: Path, codec_level: str) -> None:
    codec, level = codec_level.split("-")
    data, calls = _workload(benchmark)

    def run() -> Path:
        root = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        with ArchiveWriter(
            root, "bench", "w", codec=codec, level=int(level), fsync=False, rotation_secs=86_400
        ) as w:
            for chunk in calls:
                w.write(chunk)
        (path,) = root.glob("bench/*/*.jsonl.*")
        return path

    path = benchmark.pedantic(run, rounds=_rounds(benchmark), iterations=1)
    raw = path.read_bytes()
    if codec == "gzip":
        back = gzip.decompress(raw)
    else:
        import zstandard

        back = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read()
    _record(benchmark, data, len(raw), back == data)


@pytest.mark.benchmark(group="archive-write")
def test_rust_writer_fsync(benchmark: Any, tmp_path: Path) -> None:
    """The default writer: gzip level 1, fsync after every 4 MiB member."""
    data, calls = _workload(benchmark)

    def run() -> Path:
        root = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        with ArchiveWriter(root, "bench", "w", rotation_secs=86_400) as w:
            for chunk in calls:
                w.write(chunk)
        (path,) = root.glob("bench/*/*.jsonl.gz")
        return path

    path = benchmark.pedantic(run, rounds=_rounds(benchmark), iterations=1)
    raw = path.read_bytes()
    _record(benchmark, data, len(raw), gzip.decompress(raw) == data)


@pytest.mark.benchmark(group="archive-write")
@pytest.mark.parametrize("level", [9, 6, 1], ids=["default-9", "6", "1"])
def test_python_gzip(benchmark: Any, tmp_path: Path, level: int) -> None:
    """Baseline: ``gzip.open`` (zlib) on the same calls; 9 is the module's default."""
    data, calls = _workload(benchmark)

    def run() -> Path:
        path = tmp_path / f"run{len(list(tmp_path.iterdir()))}.jsonl.gz"
        with gzip.open(path, "wb", compresslevel=level) as f:
            for chunk in calls:
                f.write(chunk)
        return path

    path = benchmark.pedantic(run, rounds=_rounds(benchmark), iterations=1)
    raw = path.read_bytes()
    _record(benchmark, data, len(raw), zlib.decompress(raw, wbits=31) == data)


@pytest.fixture
def archive_root(tmp_path: Path, benchmark: Any) -> tuple[Path, bytes]:
    """The workload written once by the default writer (gzip level 1)."""
    data, calls = _workload(benchmark)
    root = tmp_path / "read"
    with ArchiveWriter(root, "bench", "w", fsync=False, rotation_secs=86_400) as w:
        for chunk in calls:
            w.write(chunk)
    return root, data


@pytest.mark.benchmark(group="archive-read")
def test_rust_reader(benchmark: Any, archive_root: tuple[Path, bytes]) -> None:
    """``ArchiveReader``: members checked, lines parsed and merged by ``rx``."""
    root, data = archive_root
    files = list_files(root, include_parts=True)
    back = benchmark.pedantic(
        lambda: b"".join(ArchiveReader(files)), rounds=_rounds(benchmark), iterations=1
    )
    compressed = sum(Path(f).stat().st_size for f in files)
    _record(benchmark, data, compressed, back == data)


@pytest.mark.benchmark(group="archive-read")
def test_rust_verify(benchmark: Any, archive_root: tuple[Path, bytes]) -> None:
    """``verify_archive``: the Rust scanner over every file, manifest and sequences."""
    root, data = archive_root
    result = benchmark.pedantic(
        lambda: verify_archive(root), rounds=_rounds(benchmark), iterations=1
    )
    files = list_files(root, include_parts=True)
    compressed = sum(Path(f).stat().st_size for f in files)
    _record(benchmark, data, compressed, result.ok and result.lines == data.count(b"\n"))


@pytest.mark.benchmark(group="archive-read")
def test_python_gzip_lines(benchmark: Any, archive_root: tuple[Path, bytes]) -> None:
    """Baseline: ``gzip.open`` iterating the lines of the same files (no checks, no merge)."""
    root, data = archive_root
    files = list_files(root, include_parts=True)

    def run() -> bytes:
        out = []
        for f in files:
            with gzip.open(f, "rb") as fh:
                out.extend(fh)
        return b"".join(out)

    back = benchmark.pedantic(run, rounds=_rounds(benchmark), iterations=1)
    compressed = sum(Path(f).stat().st_size for f in files)
    _record(benchmark, data, compressed, back == data)


def test_missing_fixtures_fail_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A checkout without the fixtures fails: no built-in frame stands in for them."""
    monkeypatch.setitem(globals(), "FIXTURES", tmp_path)
    with pytest.raises(FileNotFoundError, match="no fixture frames"):
        _frames()
    assert fixture_files() == []
