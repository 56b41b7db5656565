"""The CLI's conventions as a user meets them: groups print help, optional extras,
the simulator's Kalshi key, and ``ssmd demo`` cleaning up after itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ssmd.archive import iter_lines

GROUPS = ["archive", "secmaster", "db", "kraken", "polymarket", "streams"]


def ssmd(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("group", GROUPS)
def test_a_group_given_no_command_prints_its_help_and_runs_nothing(group: str) -> None:
    r = ssmd(group, env={"NATS_URL": "nats://127.0.0.1:1"})
    assert r.returncode == 2
    assert r.stdout.startswith(f"Usage: ssmd {group} [OPTIONS] COMMAND") and "Commands:" in r.stdout
    assert "ssmd: error" not in r.stderr  # nothing was started, nothing failed


def test_version_flags() -> None:
    for flag in ("--version", "-V"):
        r = ssmd(flag)
        assert r.returncode == 0 and r.stdout.startswith("ssmd ") and "(core " in r.stdout


def _blocked(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which importing ``modules`` fails, as if never installed."""
    for m in modules:
        (tmp_path / "blocked" / m).mkdir(parents=True)
        (tmp_path / "blocked" / m / "__init__.py").write_text(
            f"raise ImportError('{m} is not installed (test)')\n"
        )
    return {"PYTHONPATH": str(tmp_path / "blocked")}


@pytest.mark.parametrize(
    ("args", "env", "extra"),
    [
        (["archive", "run"], {"NATS_URL": "nats://127.0.0.1:1"}, "bus"),
        (["streams", "ls"], {"NATS_URL": "nats://127.0.0.1:1"}, "bus"),
        (
            ["connect", "kraken", "--all", "--nats", "nats://127.0.0.1:1"],
            {"DATABASE_URL": ""},
            "bus",
        ),
        (["db", "migrate"], {"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}, "secmaster"),
        (
            ["secmaster", "search", "x"],
            {"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"},
            "secmaster",
        ),
    ],
)
def test_a_missing_extra_is_named_in_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], extra: str
) -> None:
    r = ssmd(*args, env={**env, **_blocked(tmp_path, "nats", "asyncpg", "redis")})
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and f"[{extra}] extra" in err[0] and f"ssmd[{extra}]" in err[0], err


def test_all_is_every_extra_and_the_cli_names_each() -> None:
    """``[all]`` is "all of the above" (docs/cli.md), and every extra is one the CLI's
    missing-extra error can name."""
    tomllib = pytest.importorskip("tomllib")
    from ssmd.cli.options import EXTRAS

    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    parts = {name: set(reqs) for name, reqs in extras.items() if name not in ("all", "test")}
    assert set(parts) == set(EXTRAS)
    assert set(extras["all"]) == set().union(*parts.values())


def test_the_core_install_captures_and_reads_without_any_extra(tmp_path: Path) -> None:
    env = {**_blocked(tmp_path, "nats", "asyncpg", "redis"), "NATS_URL": "", "DATABASE_URL": ""}
    root = tmp_path / "data"
    r = ssmd("demo", "--offline", "-n", "2000", "--dir", str(root), env=env)
    assert r.returncode == 0, r.stderr
    r = ssmd("archive", "ls", "--dir", str(root), env=env)
    assert r.returncode == 0 and "kraken" in r.stdout, r.stderr


def test_the_kalshi_simulator_hands_out_a_key_the_connector_accepts(tmp_path: Path) -> None:
    command = ["sim", "kalshi", "--json", "--rate", "500", "--stats-every", "0", "--duration", "60"]
    with subprocess.Popen(
        [sys.executable, "-m", "ssmd", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as sim:
        try:
            assert sim.stdout is not None
            info = json.loads(sim.stdout.readline())
            keys = Path(info["env"]["KALSHI_PRIVATE_KEY_PATH"])
            assert keys.is_file() and info["env"]["KALSHI_API_KEY"]
            r = ssmd(
                "connect",
                "kalshi",
                "--all",
                "--ws-url",
                info["ws"],
                "--rest-url",
                info["rest"],
                "--dir",
                str(tmp_path),
                "--duration",
                "3s",
                env={**info["env"], "NATS_URL": "", "DATABASE_URL": ""},
            )
        finally:
            sim.terminate()
            sim.communicate(timeout=20)
    assert r.returncode == 0, r.stderr
    assert sum(1 for _ in iter_lines(tmp_path, "kalshi")) > 100
    assert not keys.exists()  # a key pair in a temporary directory goes with the simulator


def test_demo_removes_the_key_files_it_creates(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    r = ssmd(
        "demo",
        "--duration",
        "1s",
        "--venue",
        "kalshi",
        "--dir",
        str(tmp_path / "data"),
        "--json",
        env={"TMPDIR": str(scratch), "DATABASE_URL": ""},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["venues"][0]["venue"] == "kalshi" and out["venues"][0]["messages"] > 0
    assert list(scratch.iterdir()) == []


BAD_NATS = ("nats://127.0.0.1:99999", "nats://127.0.0.1:notaport")
BAD_DB = ("postgresql://x@127.0.0.1:99999/x", "postgresql://x@127.0.0.1:notaport/x")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        *[(["archive", "run"], {"NATS_URL": u}) for u in BAD_NATS],
        *[(["archive", "status", "--dir", "."], {"NATS_URL": u}) for u in BAD_NATS],
        *[(["streams", "ls"], {"NATS_URL": u}) for u in BAD_NATS],
        *[(["connect", "kraken", "--all", "--nats", u], {"DATABASE_URL": ""}) for u in BAD_NATS],
        *[
            (["cdc", "run"], {"DATABASE_URL": d, "NATS_URL": "nats://127.0.0.1:4222"})
            for d in BAD_DB
        ],
        *[(["db", "migrate"], {"DATABASE_URL": d}) for d in BAD_DB],
        *[(["secmaster", "search", "x"], {"DATABASE_URL": d}) for d in BAD_DB],
        *[
            (["lifecycle", "run"], {"DATABASE_URL": d, "NATS_URL": "nats://127.0.0.1:4222"})
            for d in BAD_DB
        ],
        (["connect", "kraken", "--all", "--metrics-port", "70000"], {}),
        (["sim", "kraken", "--port", "-1"], {}),
        (["connect", "kraken", "--all", "--ws-url", "ws://127.0.0.1:65536/"], {}),
        (
            ["cache", "run"],
            {
                "DATABASE_URL": "postgresql://x@h/x",
                "NATS_URL": "nats://h:4222",
                "REDIS_URL": "redis://h:99999/0",
            },
        ),
    ],
)
def test_a_port_out_of_range_or_not_a_number_is_a_one_line_error(
    args: list[str], env: dict[str, str]
) -> None:
    r = ssmd(*args, env=env)
    assert r.returncode == 2, (args, env, r.stderr)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ssmd: error:"), err
    assert "Traceback" not in r.stderr


def test_cache_run_with_redis_unreachable_is_one_line() -> None:
    """Nothing listens on the port: exit 1 and one line naming Redis (before NATS or PostgreSQL)."""
    r = ssmd(
        "cache",
        "run",
        env={
            "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
            "NATS_URL": "nats://127.0.0.1:1",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )
    assert r.returncode == 1, r.stderr  # a server that does not answer, not a bad setting
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ssmd: error: cannot reach Redis at"), err
    assert "127.0.0.1:1" in err[0]


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "args",
    [
        ["streams", "ls"],
        ["archive", "run", "--venue", "kraken"],
        ["connect", "kraken", "--all", "--ws-url", "ws://127.0.0.1:9/", "--duration", "5"],
    ],
)
def test_nats_nobody_listens_on_is_exit_1_one_line(args: list[str]) -> None:
    """A NATS server that does not answer is a server that cannot be reached (1), not a bad
    setting (2), as PostgreSQL and the venues are."""
    url = f"nats://127.0.0.1:{_closed_port()}"
    r = ssmd(*args, env={"NATS_URL": url, "DATABASE_URL": ""})
    assert r.returncode == 1, (args, r.stderr)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ssmd: error: cannot reach NATS at {url}"), err
    assert "Traceback" not in r.stderr


def test_a_nats_host_that_does_not_resolve_is_exit_1() -> None:
    r = ssmd("streams", "ls", "--nats", "nats://no-such-host.invalid:4222")
    assert r.returncode == 1, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ssmd: error: cannot reach NATS at"), err
