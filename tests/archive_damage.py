"""Helpers for the damaged-archive tests: files of known members, an independent oracle.

Members are compressed here with Python's ``gzip``/``zstandard``, not by the
code under test, so the tests know where each member starts and which lines
it holds without asking the reader.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from archive_helpers import T0, envelope

EXT = {"gzip": "jsonl.gz", "zstd": "jsonl.zst"}


def compress(codec: str, data: bytes) -> bytes:
    """One gzip member or zstd frame (with its checksum, as the writer makes them)."""
    if codec == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data)


def line(i: int) -> bytes:
    """Line ``i``: rx grows with ``i``, payloads vary in length."""
    return envelope(
        T0 + i * 1000, "prod.kraken.json.trade.BTC_USD", f'{{"i":{i},"p":"{"x" * (i % 53)}"}}'
    )


@dataclass
class Member:
    start: int
    end: int
    lines: list[bytes]


@dataclass
class Built:
    """A file's bytes and its members (offsets into ``data``)."""

    data: bytes
    members: list[Member] = field(default_factory=list)

    def intact(self, damaged: set[int], cut: int | None = None) -> list[bytes]:
        """Lines of the members that no damaged offset touches and that end before ``cut``."""
        out: list[bytes] = []
        for m in self.members:
            if cut is not None and m.end > cut:
                continue
            if any(m.start <= d < m.end for d in damaged):
                continue
            out += m.lines
        return out


def build(codec: str, first: int, sizes: list[int]) -> Built:
    """Members of ``sizes[k]`` consecutive lines each, numbered from ``first``."""
    b = Built(b"")
    data = bytearray()
    i = first
    for n in sizes:
        lines = [line(j) for j in range(i, i + n)]
        i += n
        start = len(data)
        data += compress(codec, b"".join(lines))
        b.members.append(Member(start, len(data), lines))
    b.data = bytes(data)
    return b


def ssmd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def day_dir(root: Path, venue: str = "kraken", day: str = "2024-03-01") -> Path:
    d = root / venue / day
    d.mkdir(parents=True, exist_ok=True)
    return d
