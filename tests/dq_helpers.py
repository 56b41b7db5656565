"""For the dq REST tests: ``ssmd dq trades --rest-url … --json`` in a subprocess, and
cutting trade lines out of an archive."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def rest_match_json(root: Path, venue: str, inst: str, day: dt.date, url: str) -> dict[str, Any]:
    """The ``rest_match`` check of ``ssmd dq trades --json`` over the archive at ``root``
    (the environment's archive and database settings left out)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSMD_ARCHIVE_DIR", "DATABASE_URL")}
    r = subprocess.run(
        [
            *(sys.executable, "-m", "ssmd", "dq", "trades", "--exchange", venue),
            *("--ticker", inst, "--date", day.isoformat(), "--dir", str(root)),
            *("--rest-url", url, "--json"),
        ],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return next(c for c in doc["checks"] if c["name"] == "rest_match")


def cut_lines(root: Path, chosen: Callable[[bytes], bool], every: int) -> list[bytes]:
    """Drop every ``every``-th ``chosen`` line from the gzip JSONL files under ``root``
    (rewritten in place); the lines dropped."""
    cut: list[bytes] = []
    seen = 0
    files = sorted(root.rglob("*.jsonl.gz"))
    assert files
    for f in files:
        kept = []
        with gzip.open(f, "rb") as fh:
            lines = fh.read().splitlines(keepends=True)
        for line in lines:
            if chosen(line):
                seen += 1
                if seen % every == 0:
                    cut.append(line)
                    continue
            kept.append(line)
        with gzip.open(f, "wb") as fh:
            fh.write(b"".join(kept))
    return cut
