"""``ssmd archive ls`` and ``ssmd archive cat``, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from archive_helpers import SEC, T0, envelope, numbered
from ssmd.archive import ArchiveWriter


def ssmd(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        cwd=cwd,
        env=full_env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """Two venues; kraken has two writers over two days."""
    root = tmp_path / "arch"
    lines = [numbered(i, rx=T0 + i * 60 * SEC) for i in range(1500)]  # 25 h of lines
    wa = ArchiveWriter(root, "kraken", "a", fsync=False)
    wb = ArchiveWriter(root, "kraken", "b", fsync=False)
    for i, line in enumerate(lines):
        (wa if i % 2 else wb).write(line)
    wa.close()
    wb.close()
    with ArchiveWriter(root, "kalshi", "a", fsync=False) as w:
        w.write(envelope(T0, "prod.kalshi.politics.json.trade.KXPRES-28-DJT", '{"p":1}'))
    return root, lines


def test_ls(archive: tuple[Path, list[bytes]]) -> None:
    root, _ = archive
    r = ssmd("archive", "ls", "--dir", str(root))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert out[0].split()[:4] == ["VENUE", "DATE", "FILE", "LINES"]
    assert any("kalshi" in row and "0000-a.jsonl.gz" in row for row in out)
    assert any(row.startswith("kraken  2024-03-02  0000-b.jsonl.gz") for row in out)
    assert "2024-03-01 00:00:00.000" in r.stdout.decode()
    total = out[-1].split()
    assert total[:4] == ["total", "201", "files", "1501"]

    r = ssmd(
        "archive", "ls", "--dir", str(root), "--venue", "kraken", "--from", "2024-03-02", "--counts"
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert "KINDS" in out[0]
    assert all("2024-03-02" in row for row in out[1:-1])
    assert "book=" in out[-1] and "trade=" in out[-1] and "ticker=" in out[-1]


def test_cat_in_rx_order_with_filters(archive: tuple[Path, list[bytes]]) -> None:
    root, lines = archive
    r = ssmd("archive", "cat", "--dir", str(root), "--venue", "kraken")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"".join(lines)

    r = ssmd(
        "archive",
        "cat",
        "--dir",
        str(root),
        "--kind",
        "book",
        "--instrument",
        "ETH/USD",
        "--from",
        "2024-03-01T10:00:00Z",
        "--to",
        "2024-03-01T12:00",
    )
    assert r.returncode == 0, r.stderr
    lo, hi = T0 + 10 * 3600 * SEC, T0 + 12 * 3600 * SEC
    want = [x for x in lines if b"book.ETH_USD" in x and lo <= orjson.loads(x)["rx"] < hi]
    assert len(want) == 30
    assert r.stdout == b"".join(want)

    r = ssmd("archive", "cat", "--dir", str(root), "--from", "2024-03-02", "--msg-only")
    assert r.returncode == 0, r.stderr
    day2 = [x for x in lines if orjson.loads(x)["rx"] >= T0 + 86400 * SEC]
    assert r.stdout.splitlines() == [orjson.dumps(orjson.loads(x)["msg"]) for x in day2]

    r = ssmd("archive", "cat", "--dir", str(root), "--to", "2024-03-01", "--venue", "kalshi")
    assert r.stdout.count(b"\n") == 1


def test_far_ends_of_time_are_open_bounds(archive: tuple[Path, list[bytes]]) -> None:
    """The last day and the largest ns there are read as bounds, not errors."""
    root, lines = archive
    for to in ("9999-12-31", "18446744073709551615", "3000-01-01T00:00Z"):
        r = ssmd("archive", "cat", "--dir", str(root), "--venue", "kraken", "--to", to)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"".join(lines)
    r = ssmd("archive", "cat", "--dir", str(root), "--from", "1970-01-01", "--venue", "kraken")
    assert r.stdout == b"".join(lines)
    r = ssmd("archive", "ls", "--dir", str(root), "--to", "9999-12-31")
    assert r.returncode == 0, r.stderr


def test_default_dir(archive: tuple[Path, list[bytes]], tmp_path: Path) -> None:
    root, _ = archive
    r = ssmd("archive", "cat", "--venue", "kalshi", env={"SSMD_ARCHIVE_DIR": str(root)})
    assert r.returncode == 0, r.stderr
    assert b"KXPRES" in r.stdout
    (tmp_path / "data").symlink_to(root)
    r = ssmd("archive", "ls", "--venue", "kalshi", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"kalshi" in r.stdout


def test_cat_into_closed_pipe_is_quiet(tmp_path: Path) -> None:
    root = tmp_path / "arch"
    with ArchiveWriter(root, "kraken", "a", fsync=False) as w:
        w.write(b"".join(numbered(i) for i in range(50_000)))
    full_env = {k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"}
    with subprocess.Popen(
        [sys.executable, "-m", "ssmd", "archive", "cat", "--dir", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
    ) as p:
        assert p.stdout is not None and p.stderr is not None
        assert p.stdout.read(1000)
        p.stdout.close()
        err = p.stderr.read()
        assert p.wait(timeout=60) == 0
    assert err == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ls", "--dir", "{missing}"], "archive directory not found"),
        (["cat", "--dir", "{missing}"], "archive directory not found"),
        (["ls", "--dir", "{root}", "--from", "2024-02-30"], "bad --from '2024-02-30'"),
        (["cat", "--dir", "{root}", "--to", "tomorrow"], "bad --to 'tomorrow'"),
        (["cat", "--dir", "{root}", "--venue", "binance"], "no venue 'binance'"),
        (
            ["cat", "--dir", "{root}", "--from", "2024-03-02", "--to", "2024-03-01T00:00"],
            "is not after",
        ),
        # Out of range but well formed: one line, never a traceback.
        (["cat", "--dir", "{root}", "--from", "1969-12-31"], "before 1970-01-01"),
        (["ls", "--dir", "{root}", "--to", "1969-07-20T20:17Z"], "before 1970-01-01"),
        (["cat", "--dir", "{root}", "--from", "0001-01-01"], "before 1970-01-01"),
        (["cat", "--dir", "{root}", "--to", "99999999999999999999999"], "below 2**64"),
        (["ls", "--dir", "{root}", "--from", "18446744073709551616"], "below 2**64"),
        (["cat", "--dir", "{root}", "--from", "10000-01-01"], "bad --from '10000-01-01'"),
        (["cat", "--dir", "{root}", "--from", "9999-12-31T23:00-05:00"], "out of range"),
        (["cat", "--dir", "{root}", "--to", "0001-01-01T00:00+01:00"], "out of range"),
        (["verify", "--dir", "{root}", "--from", "1969-12-31"], "before 1970-01-01"),
        (["verify", "--dir", "{root}", "--date", "10000-01-01"], "bad --date"),
        (["status", "--dir", "{missing}", "--nats", "nats://127.0.0.1:9"], "does not exist"),
    ],
)
def test_bad_input_is_one_line(
    archive: tuple[Path, list[bytes]], tmp_path: Path, args: list[str], message: str
) -> None:
    root, _ = archive
    argv = [a.format(root=root, missing=tmp_path / "missing") for a in args]
    r = ssmd("archive", *argv)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert err.count("\n") == 1, err
    assert err.startswith("ssmd: error: ") and message in err, err
    assert "Traceback" not in err


def test_venue_repeats_and_ls_speaks_json(archive: tuple[Path, list[bytes]]) -> None:
    root, lines = archive
    r = ssmd("archive", "cat", "--dir", str(root), "--venue", "kraken", "--venue", "kalshi")
    assert r.returncode == 0, r.stderr
    got = r.stdout.splitlines()
    assert len(got) == len(lines) + 1  # both venues, merged in rx order
    rx = [orjson.loads(x)["rx"] for x in got]
    assert rx == sorted(rx)
    r = ssmd("archive", "ls", "--dir", str(root), "--venue", "kalshi", "--json")
    assert r.returncode == 0, r.stderr
    out = orjson.loads(r.stdout)
    assert [(f["venue"], f["lines"]) for f in out["files"]] == [("kalshi", 1)]


def test_filters_that_cannot_match_say_so(archive: tuple[Path, list[bytes]]) -> None:
    root, _ = archive
    r = ssmd("archive", "cat", "--dir", str(root), "--venue", "kalshi", "--kind", "trades")
    assert r.returncode == 2 and r.stdout == b""
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "unknown --kind 'trades'" in err[0] and "ticker, trade)" in err[0], err
    # a known kind these files do not hold: a warning naming the kinds they do
    r = ssmd("archive", "cat", "--dir", str(root), "--venue", "kalshi", "--kind", "book")
    assert r.returncode == 0 and r.stdout == b""
    assert "no line of kind 'book' here (kinds here: trade)" in r.stderr.decode()
    # an instrument spelled another way gets a hint, and --strict makes it an error
    args = ["--dir", str(root), "--venue", "kalshi", "--instrument", "KXPRES-28-DJ"]
    r = ssmd("archive", "cat", *args)
    assert r.returncode == 0 and "did you mean KXPRES-28-DJT?" in r.stderr.decode(), r.stderr
    assert ssmd("archive", "cat", *args, "--strict").returncode == 1


def test_cat_help_lists_every_subject_kind() -> None:
    from ssmd.types import Channel

    r = ssmd("archive", "cat", "-h", env={"COLUMNS": "400"})
    assert r.returncode == 0
    text = " ".join(r.stdout.decode().split())
    assert f"({', '.join(c.value for c in Channel)})" in text
