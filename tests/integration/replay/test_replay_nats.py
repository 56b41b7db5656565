"""``ssmd replay`` onto a real nats-server, archived again by the archiver service: the
second archive holds the first one's lines, moved to the new environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from archive_helpers import SEC, T0, envelope
from helpers import async_wait_until
from ssmd.archive import ArchiveWriter, iter_lines
from ssmd.bus.service import run_archiver
from ssmd.runtime.shutdown import StopSignal

pytestmark = pytest.mark.integration


def test_replay_then_archive_again(tmp_path: Path, nats_url: str) -> None:
    env = "r" + uuid.uuid4().hex[:10]
    src, dst = tmp_path / "src", tmp_path / "dst"
    with ArchiveWriter(src, "kraken", "a", fsync=False) as w:
        for i in range(2000):
            w.write(
                envelope(
                    T0 + i * SEC // 1000,
                    f"prod.kraken.json.trade.P{i % 7}",
                    f'{{"i":{i}}}',
                    seq=i + 1,
                )
            )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ssmd",
            "replay",
            "--dir",
            str(src),
            "--env",
            env,
            "--speed",
            "max",
            "--nats",
            nats_url,
            "--json",
        ],
        capture_output=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"},
    )
    assert r.returncode == 0, r.stderr
    doc = orjson.loads(r.stdout)
    assert doc["lines"] == doc["acked"] == 2000 and doc["env"] == env

    async def archive() -> None:
        stop = StopSignal()
        task = asyncio.create_task(
            run_archiver(
                ["kraken"],
                dst,
                env=env,
                url=nats_url,
                stop=stop,
                signals=False,
                flush_interval=0.05,
            )
        )
        await async_wait_until(
            lambda: (dst / "kraken").is_dir() and sum(1 for _ in iter_lines(dst, "kraken")) >= 2000,
            timeout=60,
        )
        stop.set()
        await task

    asyncio.run(archive())
    before = [orjson.loads(line) for line in iter_lines(src, "kraken")]
    after = [orjson.loads(line) for line in iter_lines(dst, "kraken")]
    assert [(a["rx"], a["conn"], a["msg"]) for a in after] == [
        (b["rx"], b["conn"], b["msg"]) for b in before
    ]
    assert all(
        a["subj"] == b["subj"].replace("prod.", f"{env}.", 1)
        for a, b in zip(after, before, strict=True)
    )

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ssmd",
            "replay",
            "--dir",
            str(src),
            "--env",
            "prod",
            "--nats",
            nats_url,
        ],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 2 and b"--allow-prod" in r.stderr
