"""Crash safety: a writer killed with SIGKILL mid-stream loses no acknowledged line.

A child process writes a deterministic line stream through ``ArchiveWriter``,
flushing every N lines and printing the count acknowledged by each flush.
The parent kills it at a varying point, repairs by opening a writer on the
same directory, and reads everything back: every acknowledged line must be
there exactly once, and the archive must hold exactly a prefix of the
stream. Three kill-and-restart rounds share one directory, so restarts in
the same window (suffixes) and repairs of files in several windows happen.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import zstandard

from archive_helpers import crash_line
from ssmd.archive import ArchiveReader, ArchiveWriter, list_files, read_manifest

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from archive_helpers import crash_line
    from ssmd.archive import ArchiveWriter

    root, codec, start, every = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    w = ArchiveWriter(root, "kraken", "crash", rotation_secs=60, codec=codec)
    acked, i = 0, start
    while True:
        w.write(b"".join(crash_line(j) for j in range(i, i + every)))
        i += every
        acked += w.flush()
        print(acked, flush=True)
    """
)


def archived(root: Path) -> list[bytes]:
    return b"".join(ArchiveReader(list_files(root))).splitlines(keepends=True)


def run_and_kill(
    script: Path, root: Path, codec: str, start: int, every: int, kill_after: int
) -> int:
    """Run the child from line ``start``, flushing every ``every`` lines; SIGKILL it
    after ``kill_after`` acks."""
    child = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(Path(__file__).resolve().parents[2]),  # tests/: archive_helpers
            str(root),
            codec,
            str(start),
            str(every),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    acked = 0
    try:
        for _ in range(kill_after):
            line = child.stdout.readline()
            assert line, child.stderr.read().decode()
            acked = int(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()
        child.wait(timeout=30)
        child.stderr.close()
        child.stdout.close()
    # Acks already in the pipe were durable before they were printed.
    for line in rest.splitlines():
        acked = int(line)
    assert child.returncode == -signal.SIGKILL
    return acked


def tear(root: Path, codec: str, start: int) -> None:
    """Append half a member of later lines to the open ``.part``: what a kill
    in the middle of a large ``write`` leaves behind."""
    parts = list(root.rglob("*.part"))
    if not parts:  # killed between finalizing a file and opening the next
        return
    (part,) = parts
    payload = b"".join(crash_line(i) for i in range(start, start + 500))
    member = gzip.compress(payload) if codec == "gzip" else zstandard.compress(payload)
    with part.open("ab") as f:
        f.write(member[: len(member) // 2])


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_sigkill_loses_no_acknowledged_line(tmp_path: Path, codec: str) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = tmp_path / "archive"
    start = 0
    for every, kill_after, torn in (
        (97, 1, False),
        (97, 37, True),
        (3000, 4, False),
        (97, 150, True),
    ):
        acked = run_and_kill(script, root, codec, start, every, kill_after)
        assert acked >= kill_after * every
        if torn:
            tear(root, codec, start + acked + every)
        # Repair: a new writer of the same name finalizes the torn .part.
        ArchiveWriter(root, "kraken", "crash", rotation_secs=60, codec=codec).close()
        assert not list(root.rglob("*.part"))
        lines = archived(root)
        # Exactly a prefix of the stream, holding every acknowledged line once.
        assert len(lines) >= start + acked
        assert lines == [crash_line(i) for i in range(len(lines))]
        start = len(lines)

    manifests = [
        read_manifest(root, "kraken", d.name) for d in (root / "kraken").iterdir() if d.is_dir()
    ]
    entries = [f for m in manifests for f in m["files"]]
    assert sorted(f["name"] for f in entries) == sorted(Path(p).name for p in list_files(root))
    assert sum(f["lines"] for f in entries) == start
    assert any("-crash-01." in f["name"] for f in entries), "a restart reused a window"
