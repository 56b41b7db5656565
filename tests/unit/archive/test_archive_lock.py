"""Waiting for a manifest lock that another process holds is bounded and logged."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive_helpers import numbered
from ssmd.archive import ArchiveWriter, iter_lines, read_manifest
from ssmd.errors import ConfigError, SinkError

HOLDER = """
import fcntl, os, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0)
f.truncate()
f.write(f"pid {os.getpid()} (test holder)\\n")
f.flush()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(60)
def test_a_held_manifest_lock_times_out_and_says_who_holds_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    day = tmp_path / "kraken" / "2024-03-01"
    day.mkdir(parents=True)
    lock = day / ".manifest.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        w = ArchiveWriter(tmp_path, "kraken", "h1", fsync=False, lock_timeout=2.5)
        w.write(numbered(0))
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, "ssmd.archive"), pytest.raises(SinkError) as err:
            w.close()  # finalizes the file, then updates the day's manifest
        took = time.monotonic() - start
        assert 2.5 <= took < 20
        who = f"pid {holder.pid} (test holder)"
        assert str(err.value).startswith(f"locking {lock}: held by {who} for 2.")
        assert str(err.value).endswith(" s: gave up")
        waits = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
        assert waits, caplog.records
        assert waits[0].startswith("manifest update by writer h1: waiting 1.")
        assert f"for the lock {lock} held by {who}; giving up after 2.5 s" in waits[0]
        # Nothing is lost: the file is finalized, only its manifest entry is missing.
        assert list(iter_lines(tmp_path, "kraken")) == [numbered(0).rstrip(b"\n")]
        assert read_manifest(tmp_path, "kraken", "2024-03-01")["files"] == []
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    # With the holder gone the lock is free at once.
    start = time.monotonic()
    with ArchiveWriter(tmp_path, "kraken", "h2", fsync=False, lock_timeout=2.5) as w2:
        w2.write(numbered(1))
    assert time.monotonic() - start < 2
    names = [f["name"] for f in read_manifest(tmp_path, "kraken", "2024-03-01")["files"]]
    assert names == ["0000-h2.jsonl.gz"]


def test_lock_timeout_is_checked(tmp_path: Path) -> None:
    for bad in (-1.0, float("nan"), float("inf"), 1e9):
        with pytest.raises(ConfigError, match="lock_timeout"):
            ArchiveWriter(tmp_path, "kraken", "h1", lock_timeout=bad)
