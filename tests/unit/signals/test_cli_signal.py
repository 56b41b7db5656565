"""``ssmd signal list`` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def ssmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_list_shows_builtins_and_a_directory_and_reports_bad_files(tmp_path: Path) -> None:
    (tmp_path / "good" / "ok").mkdir(parents=True)
    (tmp_path / "good" / "ok" / "signal.py").write_text(
        "from ssmd.signals import Spread\n"
        "id = 'wide'\nname = 'Wide spread'\nrequires = {'spread': Spread()}\n"
        "def evaluate(state):\n    return (state.spread.spread_pct or 0) > 0.1\n"
    )
    (tmp_path / "all" / "broken").mkdir(parents=True)
    (tmp_path / "all" / "broken" / "signal.py").write_text("x = 1\nimport not_a_module_anywhere\n")
    (tmp_path / "all" / "ok").symlink_to(tmp_path / "good" / "ok")
    r = ssmd("signal", "list", env={"SSMD_SIGNALS_DIR": str(tmp_path / "all")})
    assert r.returncode == 1
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[1:]}
    assert rows["wide"] == "dir" and rows["volume-1m-30min"] == "builtin"
    err = r.stderr.strip().splitlines()
    assert len(err) == 1
    broken = tmp_path / "all" / "broken" / "signal.py"
    assert err[0].startswith(f"ssmd: error: {broken}:2: ModuleNotFoundError"), err
    r = ssmd("signal", "list", "--signals-dir", str(tmp_path / "good"), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["errors"] == []
    wide = next(s for s in doc["signals"] if s["id"] == "wide")
    assert wide["builders"] == "spread=spread" and wide["native"] is False


def test_list_with_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    r = ssmd("signal", "list", "--signals-dir", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"ssmd: error: signals directory not found: {tmp_path / 'nope'}"
