"""Fixtures for the signal runner tests: a unique environment on the shared nats-server
(its venue streams deleted afterwards), a signals folder with a signal of a unique id
(so the shared SIGNALS stream and ssmd_signals bucket do not mix tests up). The helpers that publish lines as a
connector does and read fires back are in tests/signal_helpers.py."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

SIGNAL = """\
from typing import ClassVar
from ssmd.signals import VolumeProfile
from ssmd.signals.builtin import VolumeSignal

class Test(VolumeSignal):
    id = "{sid}"
    name = "test volume over 10 s"
    requires: ClassVar = {{"volume": VolumeProfile(window="10s")}}
"""


@pytest.fixture
def signal_dir(tmp_path: Path) -> tuple[Path, str]:
    """``(signals folder, signal id)``: a 10-second dollar-volume signal of a unique id."""
    sid = "t" + uuid.uuid4().hex[:12]
    d = tmp_path / "signals" / "test"
    d.mkdir(parents=True)
    (d / "signal.py").write_text(textwrap.dedent(SIGNAL.format(sid=sid)))
    return tmp_path / "signals", sid


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[Any]:
    import nats

    nc = await nats.connect(nats_url)
    yield nc.jetstream()
    await nc.close()
