"""``ssmd dq secmaster`` without a database: which archive lines name instruments, and the
one-line errors (the checks against PostgreSQL are in tests/integration/dq)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from archive_helpers import SEC, T0, envelope
from ssmd.archive import ArchiveWriter
from ssmd.dq.secmaster import archive_instruments


def test_archive_instruments_are_the_data_subjects_of_the_day(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, "kalshi", "w", fsync=False) as w:
        for i, subj in enumerate(
            [
                "prod.kalshi.crypto.json.trade.KX-A",
                "prod.kalshi.crypto.json.trade.KX-A",
                "prod.kalshi.json.book.KX-B",
                "prod.kalshi.json.status.ka-host-1-0",
                "prod.kalshi.json.malformed.ka-host-1-0",
                "prod.kalshi.json.unknown.ka-host-1-0",
            ]
        ):
            w.write(envelope(T0 + i * SEC, subj, "{}"))
        w.write(envelope(T0 + 86_400 * SEC, "prod.kalshi.json.trade.KX-NEXT-DAY", "{}"))
    with ArchiveWriter(tmp_path, "kraken", "w", fsync=False) as w:
        w.write(envelope(T0, "prod.kraken.json.book.BTC_USD", "{}"))
    (tmp_path / "parquet").mkdir()  # not a venue

    found = archive_instruments(tmp_path, dt.date(2024, 3, 1))
    assert found == {"kalshi": {"KX-A": 2, "KX-B": 1}, "kraken": {"BTC_USD": 1}}
    assert archive_instruments(tmp_path, dt.date(2024, 3, 2)) == {"kalshi": {"KX-NEXT-DAY": 1}}
    assert archive_instruments(tmp_path, dt.date(2024, 3, 3)) == {}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", "dq", "secmaster", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_without_a_database_it_is_a_one_line_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    r = _cli("--dir", str(tmp_path), env=env)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "ssmd: error: ssmd dq secmaster needs DATABASE_URL (export it or pass --database-url)"
    )
    r = _cli("--max-sync-age", "soon", env={**env, "DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert r.returncode == 2
    assert r.stderr.startswith("ssmd: error: Invalid value for '--max-sync-age'")
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli("--date", "2024-13-01", env={**env, "DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
