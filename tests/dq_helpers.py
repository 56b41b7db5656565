"""Running ``ssmd dq trades --rest-url … --json`` in a subprocess, for the dq tests."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
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
