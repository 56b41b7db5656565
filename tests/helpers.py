"""Test helpers shared by the whole suite.

Import as ``from helpers import wait_until, async_wait_until``: ``tests/`` is
on ``sys.path`` through ``pythonpath`` in ``pyproject.toml`` (test modules
themselves are imported with ``--import-mode=importlib``, so two of them may
share a file name in different folders).

Tests must poll for a condition with these helpers instead of sleeping a fixed
time: they return as soon as the condition holds and fail with a clear message
when it does not within ``timeout``.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["async_wait_until", "run_measured", "wait_until"]

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 0.02


def _timeout_error(
    predicate: object, timeout: float, last: object, message: str | None
) -> TimeoutError:
    what = message or getattr(predicate, "__name__", repr(predicate))
    return TimeoutError(f"condition not met within {timeout:.1f}s: {what} (last value: {last!r})")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    message: str | None = None,
) -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Raises ``TimeoutError`` (naming ``message`` or the predicate) after ``timeout``
    seconds. The predicate is always called at least once, and once more at the
    deadline, so a slow poll interval cannot cause a spurious timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout_error(predicate, timeout, result, message)
        time.sleep(min(interval, remaining))


async def async_wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    message: str | None = None,
) -> T:
    """Async ``wait_until``: ``predicate`` may be a plain or an async callable.

    Yields to the event loop between polls, so the code under test keeps running.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        result: T = await value if inspect.isawaitable(value) else value
        if result:
            return result
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise _timeout_error(predicate, timeout, result, message)
        await asyncio.sleep(min(interval, remaining))


#: runs argv[1:], waits for it and writes its exit code and peak RSS to stderr as JSON
_WAIT4 = (
    "import json, os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "sys.stderr.write(json.dumps({'exit': os.waitstatus_to_exitcode(status),"
    " 'maxrss_kib': usage.ru_maxrss}) + '\\n')\n"
)


async def run_measured(
    argv: list[str], out: str, err: str, env: dict[str, str] | None = None
) -> dict[str, int]:
    """Run ``argv`` to its end; returns ``{"exit": code, "maxrss_kib": peak RSS}``.

    Its peak RSS is ``wait4``'s, as ``/usr/bin/time`` reports it, taken by a small
    process that starts the command: ``ru_maxrss`` counts the RSS of the parent at
    the fork, and a test process can hold hundreds of MiB. The event loop keeps
    running meanwhile (a simulator in this process goes on serving). ``out`` and
    ``err`` are file paths for the command's stdout and stderr; the report is the
    last line of ``err``.
    """
    import json
    import sys

    with open(out, "wb") as o, open(err, "wb") as e:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WAIT4, *argv, stdout=o, stderr=e, env=env
        )
        await proc.wait()
    with open(err, encoding="utf-8", errors="replace") as e:
        report: dict[str, int] = json.loads(e.read().strip().splitlines()[-1])
    return report


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
