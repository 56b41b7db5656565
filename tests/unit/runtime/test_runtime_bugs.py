"""A bug in venue code ends the capture with its traceback, never a reconnect loop.

``ssmd.errors.classify`` calls an exception it does not know FATAL; the
supervisor then stops instead of retrying, ``run_capture`` raises the very
exception, and ``ssmd connect`` exits non-zero with its traceback printed once.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sim_client import MakeSim
from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.registry import create
from ssmd.runtime.capture import run_capture
from ssmd.runtime.sink import ArchiveSink

SYMBOLS = ("BTC/USD", "ETH/USD")


def _broken_auth(url: str) -> dict[str, str]:
    raise AttributeError("'NoneType' object has no attribute 'sign'")


async def _capture(sim: Any, root: Path, break_it: Any) -> Any:
    connector = create("kraken", {"ws_url": sim.ws_url, "rest_url": sim.rest_url})
    break_it(connector)
    return await asyncio.wait_for(
        run_capture(
            connector,
            InstrumentQuery(symbols=SYMBOLS),
            ArchiveSink(root, "kraken", "test"),
            duration=30.0,
            writer="test",
            backoff_base=0.01,
            backoff_cap=0.05,
            with_metrics=False,
        ),
        20.0,
    )


async def test_a_bug_while_connecting_ends_the_capture(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken", rate=100.0)
    caplog.set_level(logging.INFO, logger="ssmd")
    t0 = time.monotonic()
    with pytest.raises(AttributeError, match="no attribute 'sign'"):
        await _capture(sim, tmp_path, lambda c: setattr(c, "auth_headers", _broken_auth))
    assert time.monotonic() - t0 < 15  # not the 30 s of a reconnect loop
    assert sim.stats()["connections_total"] == 0
    assert not [r for r in caplog.records if "retry in" in r.getMessage()]
    bugs = [r for r in caplog.records if "stopping on a bug" in r.getMessage()]
    assert len(bugs) == 1 and bugs[0].exc_info is None  # the traceback leaves with the exception


async def test_a_bug_on_the_data_path_ends_the_capture(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken", rate=500.0)

    def break_sessions(connector: Any) -> None:
        make = connector.new_session

        def new_session(index: int) -> Any:
            session = make(index)

            def on_control(kind: str, raw: bytes) -> Any:
                raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

            session.on_control = on_control
            return session

        connector.new_session = new_session

    with pytest.raises(TypeError, match="unsupported operand"):
        await _capture(sim, tmp_path, break_sessions)  # the subscribe acks reach on_control
    assert sim.stats()["connections_total"] == 1  # no reconnect


async def test_ssmd_connect_exits_non_zero_with_one_traceback(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken", rate=100.0)
    script = textwrap.dedent(
        f"""
        import sys
        from ssmd.connectors.kraken.connector import KrakenConnector

        def auth_headers(self, url):
            raise AttributeError("'NoneType' object has no attribute 'sign'")

        KrakenConnector.auth_headers = auth_headers  # the bug, in this process only
        sys.argv = ["ssmd", "connect", "kraken", "--symbols", "BTC/USD",
                    "--ws-url", {sim.ws_url!r}, "--rest-url", {sim.rest_url!r},
                    "--dir", {str(tmp_path)!r}, "--duration", "30"]
        from ssmd.cli import main
        main()
        """
    )
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "NATS_URL": "", "DATABASE_URL": ""},
    )
    _, err = await asyncio.wait_for(proc.communicate(), 25)
    assert time.monotonic() - t0 < 25
    text = err.decode()
    assert proc.returncode not in (0, None), text
    assert text.count("Traceback (most recent call last)") == 1, text
    assert "AttributeError: 'NoneType' object has no attribute 'sign'" in text
    assert "retry in" not in text
