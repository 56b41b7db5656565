"""``ssmd demo`` and ``ssmd version`` as a user runs them."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path


def ssmd(*args: str) -> subprocess.CompletedProcess[str]:
    """``ssmd ARGS`` without a database (the demo's lifecycle consumer needs one)."""
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATABASE_URL": ""},
    )


def test_version() -> None:
    r = ssmd("version")
    assert r.returncode == 0
    assert r.stdout.startswith("ssmd ") and "(core " in r.stdout


def test_help_lists_groups() -> None:
    r = ssmd("--help")
    assert r.returncode == 0
    for group in ("demo", "archive", "version"):
        assert group in r.stdout


def test_offline_demo_writes_a_readable_archive(tmp_path: Path) -> None:
    r = ssmd("demo", "--offline", "-n", "4000", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "polymarket" in r.stdout and "gaps" in r.stdout
    files = sorted(tmp_path.glob("*/*/*.jsonl.gz"))
    assert {f.parts[-3] for f in files} == {"kalshi", "kraken", "kraken-futures", "polymarket"}
    assert not list(tmp_path.glob("*/*/*.part"))
    total = 0
    for f in files:
        for line in gzip.decompress(f.read_bytes()).splitlines():
            env = json.loads(line)
            assert set(env) == {"rx", "conn", "subj", "msg"}
            assert env["subj"].startswith(f"prod.{f.parts[-3]}.")
            total += 1
    assert total >= 4000
    manifests = list(tmp_path.glob("*/*/manifest.json"))
    assert len(manifests) == 4


def test_demo_bad_venue_is_one_line_error() -> None:
    r = ssmd("demo", "--venue", "binance")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "is not one of" in r.stderr
    assert "Traceback" not in r.stderr


def test_demo_message_count_is_capped(tmp_path: Path) -> None:
    """``-n`` above 10 million is refused at once (the frames are generated as they are
    written, but an archive that size is not a demo)."""
    r = ssmd("demo", "--offline", "-n", "10000001", "--dir", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "10000000" in r.stderr.replace(",", "")
    assert not list(tmp_path.iterdir())  # nothing written


def test_bad_flag_is_usage_error() -> None:
    r = ssmd("demo", "--no-such-flag")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_live_demo_captures_every_venue_from_its_simulator(tmp_path: Path) -> None:
    r = ssmd("demo", "--duration", "2", "--rate", "1000", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = {
        line.split()[0]: line.split()
        for line in r.stdout.splitlines()
        if line.split() and line.split()[0] in ("kalshi", "kraken", "kraken-futures", "polymarket")
    }
    assert set(rows) == {"kalshi", "kraken", "kraken-futures", "polymarket"}
    assert "lifecycle: skipped (no DATABASE_URL" in r.stdout  # said, not silently left out
    # the built-in signals ran on the in-process bus; their fires are reported
    (summary,) = [x for x in r.stdout.splitlines() if x.startswith("signals: ")]
    fired = re.match(
        r"signals: ([\d,]+) fire\(s\) of 3 built-in signals over ([\d,]+) records", summary
    )
    assert fired, summary
    assert int(fired[1].replace(",", "")) > 0 and int(fired[2].replace(",", "")) > 1000, summary
    assert re.search(
        r"\(volume-1m-1min [\d,]+, price-jump [1-9][\d,]*, lifecycle [\d,]+\)", summary
    )
    for venue, cols in rows.items():
        messages = int(cols[2].replace(",", ""))
        gaps, malformed = int(cols[5]), int(cols[6])
        assert messages > 500, (venue, cols)
        assert gaps == 0 and malformed == 0, (venue, cols)
    # the archive holds what the table says, as envelope lines
    counted = 0
    for f in sorted(tmp_path.glob("*/*/*.jsonl.gz")):
        for line in gzip.decompress(f.read_bytes()).splitlines():
            env = json.loads(line)
            assert env["subj"].startswith(f"prod.{f.parts[-3]}.")
            counted += 1
    assert counted >= sum(int(c[2].replace(",", "")) for c in rows.values())
