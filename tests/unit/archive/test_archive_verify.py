"""``ssmd archive verify``: files against their manifests, stream sequences for gaps and duplicates.

Archives are written by the real ``ArchiveWriter``, then damaged on purpose.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

import ssmd.cli.archive  # noqa: F401  (registers the archive commands)
from ssmd.archive import ArchiveWriter
from ssmd.archive.verify import verify_archive
from ssmd.bus import MemoryBus, stream_specs
from ssmd.bus.archiver import VenueArchiver
from ssmd.cli._app import app
from ssmd.errors import ConfigError

T0 = 1_709_251_200_000_000_000  # 2024-03-01T00:00:00Z
MIN = 60 * 1_000_000_000
DAY1, DAY2 = "2024-03-01", "2024-03-02"
TRADE = "prod.kalshi.economics.json.trade.KXFED-25DEC"
STATUS = "prod.kalshi.json.status.archiver"

Seq = int | tuple[int, int] | None


def env(rx: int, seq: Seq = None, *, subj: str = TRADE, msg: str = '{"p":1}') -> bytes:
    """One envelope line; ``seq`` is ``M``, ``(M, i)`` or absent."""
    if seq is None:
        s = ""
    elif isinstance(seq, tuple):
        s = f',"seq":[{seq[0]},{seq[1]}]'
    else:
        s = f',"seq":{seq}'
    return f'{{"rx":{rx}{s},"conn":"c1","subj":"{subj}","msg":{msg}}}\n'.encode()


def gap_line(rx: int, first: int, last: int) -> bytes:
    msg = f'{{"ssmd":"gap","reason":"stream","from":{first},"to":{last},"stream":"PROD_KALSHI"}}'
    return env(rx, None, subj=STATUS, msg=msg)


def write(root: Path, venue: str, writer: str, lines: list[bytes], **kw: Any) -> None:
    with ArchiveWriter(root, venue, writer, fsync=False, **kw) as w:
        for line in lines:
            w.write(line)


def verify(*args: str) -> Any:
    return CliRunner().invoke(app, ["archive", "verify", *args])


def report(root: Path, *args: str) -> tuple[int, list[str]]:
    r = verify("--dir", str(root), "--no-progress", *args)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout.splitlines()


def as_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = verify("--dir", str(root), "--json", *args)
    return r.exit_code, orjson.loads(r.stdout)


def day_row(out: list[str], venue: str, date: str) -> list[str]:
    rows = [line.split() for line in out if line.startswith(f"{venue} ") and date in line]
    assert len(rows) == 1, out
    return rows[0]


def clean_kalshi(root: Path) -> int:
    """Two days of kalshi lines, 1..100 with a recorded gap 50..59 and a
    three-line bus message (41) split across two files; returns the lines."""
    lines = [env(T0 + k * MIN, k) for k in range(1, 41)]
    rx = T0 + 45 * MIN
    lines += [env(rx - 2, (41, 0)), env(rx - 1, (41, 1)), env(rx, (41, 2))]  # 0030 | 0045
    lines += [env(T0 + (k + 5) * MIN, k) for k in range(42, 50)]
    lines.append(gap_line(T0 + 55 * MIN, 50, 59))
    lines += [env(T0 + (k + 5) * MIN, k) for k in range(60, 81)]
    lines += [env(T0 + 24 * 60 * MIN + k * MIN, k) for k in range(81, 101)]
    write(root, "kalshi", "a", lines)
    return len(lines)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "arch"


def test_clean_archive_with_recorded_gap_and_split_batch(root: Path) -> None:
    n = clean_kalshi(root)
    # The embedded connector archive: no seq at all, zstd.
    write(root, "kraken", "edge", [env(T0 + k * MIN, None) for k in range(30)], codec="zstd")
    code, out = report(root)
    assert code == 0, out
    assert out[0].split() == [
        "VENUE",
        "DATE",
        "FILES",
        "OK",
        "BAD",
        "OPEN",
        "LINES",
        "GAPS",
        "REC",
        "GAPS",
        "UNREC",
        "DUPS",
    ]
    k1 = day_row(out, "kalshi", DAY1)
    assert k1[2:] == ["6", "6", "0", "0", str(n - 20), "10", "0", "0"]
    assert day_row(out, "kalshi", DAY2)[2:] == ["2", "2", "0", "0", "20", "0", "0", "0"]
    assert day_row(out, "kraken", DAY1)[2:] == ["2", "2", "0", "0", "30", "0", "0", "0"]
    assert (
        "note: kalshi 2024-03-01: stream seq 50-59 missing (10), recorded as a stream gap"
        " (between 2024-03-01/0045-a.jsonl.gz and 2024-03-01/0100-a.jsonl.gz)" in out
    )
    assert not any(line.startswith("error") for line in out)
    assert out[-1].startswith("verified 2 venues, 3 days, 10 files (0 bad, 0 open), 123 lines in ")
    assert out[-1].endswith(": OK, 1 note")

    code, doc = as_json(root)
    assert code == 0
    assert doc["ok"] is True
    assert doc["summary"]["lines"] == n + 30
    assert doc["gaps"] == [
        {
            "venue": "kalshi",
            "date": DAY1,
            "from": 50,
            "to": 59,
            "count": 10,
            "recorded": True,
            "after_file": "2024-03-01/0045-a.jsonl.gz",
            "before_file": "2024-03-01/0100-a.jsonl.gz",
        }
    ]
    assert doc["duplicates"] == [] and doc["resets"] == [] and doc["files"] == []


def test_unrecorded_gaps_and_duplicates(root: Path) -> None:
    lines = [env(T0 + k * MIN, k) for k in range(1, 11)]  # 1..10
    lines.append(gap_line(T0 + 10 * MIN, 11, 12))  # 11..15 missing, only 11..12 recorded
    lines += [env(T0 + k * MIN, k) for k in (16, 17, 18, 18, 19, 21, 20)]  # 18 twice, 21 early
    write(root, "kalshi", "a", lines)
    write(root, "kalshi", "b", [env(T0 + 5 * MIN, 5), env(T0 + 6 * MIN, 6)])  # archived twice
    code, out = report(root)
    assert code == 1
    between = "(between 2024-03-01/0000-a.jsonl.gz and 2024-03-01/0015-a.jsonl.gz)"
    assert out[2:-1] == [
        "error: kalshi 2024-03-01: stream seq 5-6 archived twice (2):"
        " in 2024-03-01/0000-a.jsonl.gz and 2024-03-01/0000-b.jsonl.gz",
        f"note: kalshi 2024-03-01: stream seq 11-12 missing (2), recorded as a stream gap {between}",
        f"error: kalshi 2024-03-01: stream seq 13-15 missing (3), not recorded {between}",
        "error: kalshi 2024-03-01: stream seq 18 archived twice (1): twice in 2024-03-01/0015-a.jsonl.gz",
    ]
    assert day_row(out, "kalshi", DAY1)[2:] == ["3", "3", "0", "0", "20", "2", "3", "3"]
    assert out[-1].endswith("FAILED, 3 errors, 1 note")

    code, doc = as_json(root)
    assert code == 1 and doc["ok"] is False
    assert [(g["from"], g["to"], g["recorded"]) for g in doc["gaps"]] == [
        (11, 12, True),
        (13, 15, False),
    ]
    assert sorted((d["from"], d["to"], len(d["files"])) for d in doc["duplicates"]) == [
        (5, 6, 2),
        (18, 18, 1),
    ]


def test_batch_line_archived_twice_is_a_duplicate(root: Path) -> None:
    """Many members: the fast path over a long file, then one line of a bus
    message repeated (the scan in collect mode finds it)."""
    lines = [env(T0 + k * 10_000, (k // 7, k % 7)) for k in range(30_000)]
    write(root, "kalshi", "a", lines, max_buffer_bytes=64 << 10)
    code, doc = as_json(root)
    assert code == 0, doc["issues"]
    assert doc["summary"]["lines"] == 30_000

    shutil.rmtree(root)
    write(root, "kalshi", "a", [*lines[:20_000], lines[12_345], *lines[20_000:]])
    code, doc = as_json(root)
    assert code == 1
    m = 12_345 // 7
    assert [(d["from"], d["to"]) for d in doc["duplicates"]] == [(m, m)]
    assert doc["gaps"] == []


def test_out_of_order_lines_are_not_duplicates(root: Path) -> None:
    write(root, "kalshi", "a", [env(T0 + k * MIN, s) for k, s in enumerate([1, 2, 3])])
    # Out of order from the first line of a file, and a file holding only 5, 4.
    write(root, "kalshi", "a", [env(T0 + (20 + k) * MIN, s) for k, s in enumerate([5, 4])])
    seqs = [6, 8, 7, 9]
    write(root, "kalshi", "a", [env(T0 + (35 + k) * MIN, s) for k, s in enumerate(seqs)])
    code, out = report(root)
    assert code == 0, out
    assert len(out) == 3, out  # the table and the summary: no error, no note


def test_corrupt_missing_and_unlisted_files(root: Path, tmp_path: Path) -> None:
    clean_kalshi(root)
    day = root / "kalshi" / DAY1
    damaged = day / "0030-a.jsonl.gz"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x55
    damaged.write_bytes(bytes(data))
    (day / "0015-a.jsonl.gz").unlink()
    other = tmp_path / "other"
    write(other, "kalshi", "x", [env(T0 + 200 * MIN, None)])
    shutil.copy(other / "kalshi" / DAY1 / "0315-x.jsonl.gz", day / "0315-x.jsonl.gz")
    # Not written by ssmd: two members, a line that is not an envelope, no
    # final newline (the last line is read all the same, as the reader does).
    member = gzip.compress(env(T0 + 201 * MIN) + b'{"x":1}\n' + env(T0 + 202 * MIN))
    (day / "0330-y.jsonl.gz").write_bytes(member + gzip.compress(env(T0 + 203 * MIN)[:-1]))

    code, out = report(root, "--date", DAY1)
    assert code == 1
    errors = [line for line in out if line.startswith("error")]
    assert len(errors) == 7, out
    assert errors[0] == (
        "error: kalshi 2024-03-01 0015-a.jsonl.gz: missing: listed in the manifest, not on disk"
    )
    assert errors[1].startswith("error: kalshi 2024-03-01 0030-a.jsonl.gz: sha256: manifest ")
    assert errors[2].startswith(
        "error: kalshi 2024-03-01 0030-a.jsonl.gz: corrupt: bad gzip member at offset 0:"
    )
    assert errors[2].endswith(f"(dropped 1 member, {len(data)} bytes)")
    assert errors[3] == "error: kalshi 2024-03-01 0315-x.jsonl.gz: not in the manifest (1 line)"
    assert errors[4:6] == [
        "error: kalshi 2024-03-01 0330-y.jsonl.gz: not in the manifest (3 lines)",
        "error: kalshi 2024-03-01 0330-y.jsonl.gz: corrupt: 1 line is not an envelope line"
        " (first: line 2) (dropped 1 line)",
    ]
    # The sequences of the missing file (15..29) and of the corrupt one (30..40,
    # and two of the three lines of 41) are gone: one unrecorded gap.
    assert errors[6] == (
        "error: kalshi 2024-03-01: stream seq 15-40 missing (26), not recorded"
        " (between 2024-03-01/0000-a.jsonl.gz and 2024-03-01/0045-a.jsonl.gz)"
    )
    assert day_row(out, "kalshi", DAY1)[2:6] == ["8", "4", "4", "0"]


def test_manifest_mismatch_zstd(root: Path) -> None:
    write(root, "kalshi", "z", [env(T0 + k * MIN, k) for k in range(1, 21)], codec="zstd")
    code, out = report(root)
    assert code == 0, out
    path = root / "kalshi" / DAY1 / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    entry = manifest["files"][0]
    assert entry["name"] == "0000-z.jsonl.zst"
    entry["lines"] += 1
    entry["first_seq"] = [1, 0]
    entry["last_seq"] = 99
    entry["gaps"] = [{"rx": T0, "subj": STATUS}]
    path.write_bytes(orjson.dumps(manifest))
    code, out = report(root)
    assert code == 1
    assert [line for line in out if line.startswith("error")] == [
        "error: kalshi 2024-03-01 0000-z.jsonl.zst: lines: manifest 15, file 14",
        "error: kalshi 2024-03-01 0000-z.jsonl.zst: first_seq: manifest [1, 0], file 1",
        "error: kalshi 2024-03-01 0000-z.jsonl.zst: last_seq: manifest 99, file 14",
        "error: kalshi 2024-03-01 0000-z.jsonl.zst: gaps: manifest 1 gap lines, file []",
    ]


def test_open_part_file_and_stream_reset(root: Path) -> None:
    old = [env(T0 + k * MIN, 500 + k) for k in range(20)]  # 500..519, files 0000 and 0015
    new = [env(T0 + (30 + k) * MIN, 1 + k) for k in range(10)]  # the stream restarted at 1
    write(root, "kalshi", "a", [*old, *new])
    w = ArchiveWriter(root, "kalshi", "a", fsync=False)
    try:
        w.write(b"".join(env(T0 + (45 + k) * MIN, 11 + k) for k in range(3)))
        w.flush()  # 0045-a.jsonl.gz.part: three lines in one complete member
        code, out = report(root)
    finally:
        w.close()
    assert code == 0, out
    assert out[-3:-1] == [
        "note: kalshi 2024-03-01 0045-a.jsonl.gz.part: open (being written or needs repair):"
        " 3 lines so far",
        "note: kalshi 2024-03-01 0030-a.jsonl.gz: stream sequence went back from 515-519"
        " (2024-03-01/0015-a.jsonl.gz) to 1-10: stream reset; sequences from here on are"
        " checked separately",
    ]
    assert day_row(out, "kalshi", DAY1)[2:7] == ["4", "3", "0", "1", "33"]


def test_date_selection(root: Path) -> None:
    clean_kalshi(root)
    day2 = root / "kalshi" / DAY2
    (day2 / "0130-a.jsonl.gz").unlink()
    assert report(root, "--date", DAY1)[0] == 0
    assert report(root, "--from", DAY1, "--to", DAY1)[0] == 0
    code, out = report(root, "--from", DAY2)
    assert code == 1
    assert [row.split()[1] for row in out[1:] if row.startswith("kalshi")] == [DAY2]
    code, doc = as_json(root, "--venue", "kalshi", "--to", DAY1)
    assert code == 0 and [d["date"] for d in doc["days"]] == [DAY1]


def test_bad_arguments_are_config_errors(root: Path) -> None:
    clean_kalshi(root)
    r = verify("--dir", str(root), "--date", DAY1, "--from", DAY1)
    assert isinstance(r.exception, ConfigError)
    r = verify("--dir", str(root), "--from", DAY2, "--to", DAY1)
    assert isinstance(r.exception, ConfigError)
    with pytest.raises(ConfigError):
        verify_archive(root, "kalshi", "2024-02-30")
    env_ = {k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"}
    for args, message in [
        (["--dir", str(root / "nope")], "ssmd: error: archive directory not found: "),
        (["--dir", str(root), "--date", "2024-3-1"], "ssmd: error: bad --date '2024-3-1': "),
        (["--dir", str(root), "--venue", "kraken"], "ssmd: error: no venue 'kraken' in "),
    ]:
        p = subprocess.run(
            [sys.executable, "-m", "ssmd", "archive", "verify", *args],
            capture_output=True,
            env=env_,
            timeout=60,
            check=False,
        )
        assert p.returncode == 2, p.stderr
        assert p.stdout == b""
        lines = p.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), lines


async def test_archive_written_by_the_archiver_verifies(root: Path) -> None:
    """The real archiver over the in-process bus: seq stamps, a recorded gap
    for messages aged out of the stream, a restart in the same window."""
    specs = stream_specs("prod", environ={})
    bus = MemoryBus([replace(s, max_msgs=10) if s.venue == "kraken" else s for s in specs])
    subj = "prod.kraken.json.trade.A"

    def publish(start: int, n: int, per: int) -> None:
        for i in range(start, start + n):
            body = b"".join(
                b'{"rx":%d,"conn":"c","subj":"%s","msg":{"i":%d}}\n' % (T0 + i, subj.encode(), i)
                for _ in range(per)
            )
            bus.publish(subj, body, f"c:{i}.0")

    async def archive_until(last: int) -> None:
        arch = VenueArchiver(bus.source("PROD_KRAKEN"), root, "kraken", flush_interval=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(arch.run(stop))
        while not (arch.stats.last_seq == last and arch.stats.flushes > 0) and not task.done():
            await asyncio.sleep(0.01)
        stop.set()
        await task

    publish(0, 8, per=1)
    await archive_until(8)
    publish(8, 30, per=3)  # 38 messages through a stream that keeps 10: 9..28 age out
    await archive_until(38)
    code, doc = as_json(root)
    assert code == 0, doc["issues"]
    assert doc["summary"]["lines"] == 8 + 1 + 10 * 3  # the gap status line included
    assert [(g["from"], g["to"], g["recorded"]) for g in doc["gaps"]] == [(9, 28, True)]
