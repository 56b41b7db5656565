"""A throwaway PostgreSQL cluster of a test's own, for tests that restart the server.

The suite's PostgreSQL (``DATABASE_URL``) is shared: a test that restarts
or reconfigures a server starts its own instead, with the binaries
``.ci/services.sh`` uses (``PG_BIN``, default ``/usr/lib/postgresql/15/bin``)
on a free loopback port, under a temporary directory removed at the end.
As root, ``initdb`` and the server run as the ``postgres`` user (PostgreSQL
refuses to run as root). Imported as ``from pg_cluster import PgCluster``.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from helpers import free_port

__all__ = ["PgCluster", "pg_bin"]


def pg_bin() -> Path:
    """The PostgreSQL binaries (skips the test when they are not installed)."""
    found = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
    if not (found / "initdb").exists() or not (found / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL binaries not found in {found} (set PG_BIN)")
    return found


class PgCluster:
    """``initdb`` + ``pg_ctl`` on a port of its own; ``dsn`` is a superuser's ``ssmd`` database."""

    def __init__(self, *, wal_level: str = "logical", settings: Sequence[str] = ()) -> None:
        """``settings``: more ``postgresql.conf`` lines (``"max_slot_wal_keep_size = 1MB"``)."""
        self.bin = pg_bin()
        self.wal_level = wal_level
        self.settings = tuple(settings)
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
        self.root = Path(tempfile.mkdtemp(prefix="ssmd-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.dsn = f"postgresql://ssmd@127.0.0.1:{self.port}/ssmd"
        self.admin_dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(
            cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False
        )
        if r.returncode != 0:
            tail = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {r.stderr.strip()}\n{tail}")

    def start(self) -> PgCluster:
        self.sock.mkdir()
        if self.as_root:
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        # Start the WAL at a random position: every new cluster would otherwise write the
        # same LSNs, and CDC's message ids ({lsn}:{n}) of two test clusters publishing into
        # the one SECMASTER_CDC stream within its duplicate window would collide, the later
        # change dropped by JetStream as a duplicate of the earlier cluster's
        segment = f"00000001{random.randrange(1, 1 << 16):08X}{random.randrange(1 << 8):08X}"
        self._run("pg_resetwal", "-l", segment, str(self.data))
        conf = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.sock}'",
            f"wal_level = {self.wal_level}",
            "max_replication_slots = 8",
            "max_wal_senders = 8",
            "fsync = off",  # a process restart loses nothing; only an OS crash would
            "full_page_writes = off",
            *self.settings,
        ]
        described = subprocess.run(
            [str(self.bin / "postgres"), "--describe-config"], capture_output=True, text=True
        ).stdout
        if any(line.startswith("output_plugin_libraries") for line in described.splitlines()):
            conf.append("output_plugin_libraries = 'pgoutput, test_decoding, wal2json'")
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\n# ssmd test cluster\n" + "\n".join(conf) + "\n")
        self._pg_ctl("start")
        self._run(
            "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
            "-U", "postgres", "-d", "postgres",
            "-c", "CREATE ROLE ssmd LOGIN SUPERUSER REPLICATION",
            "-c", "CREATE DATABASE ssmd OWNER ssmd",
        )  # fmt: skip
        return self

    def _pg_ctl(self, action: str, mode: str = "fast") -> None:
        extra = ["-m", mode] if action in ("stop", "restart") else []
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", action, *extra
        )

    def restart(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: connections terminated; ``immediate``: a crash) and start it."""
        self._pg_ctl("stop", mode)
        self._pg_ctl("start")

    def stop(self) -> None:
        """Stop the server (if it runs) and remove the cluster."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
