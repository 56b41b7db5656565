"""The command line keeps numpy's OpenBLAS to one thread unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: the process's threads once numpy is loaded, after the command line's set-up or not
PROBE = """
import os, sys
if sys.argv[1] == "cli":
    from ssmd.cli import main
    sys.argv = ["ssmd", "version"]
    try:
        main()
    except SystemExit:
        pass
import numpy
print(len(os.listdir("/proc/self/task")), os.environ.get("OPENBLAS_NUM_THREADS"))
"""


def _probe(how: str, env: dict[str, str]) -> tuple[int, str]:
    out = (
        subprocess.run(
            [sys.executable, "-c", PROBE, how], env=env, capture_output=True, text=True, check=True
        )
        .stdout.splitlines()[-1]
        .split()
    )  # after what the command printed
    return int(out[0]), out[1]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc")
def test_one_blas_thread_unless_the_user_sets_it() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    threads, setting = _probe("cli", env)
    assert (threads, setting) == (1, "1")  # numpy loaded, no BLAS worker spinning
    bare, _ = _probe("bare", env)
    assert bare >= threads  # one worker per core without it (none on one core)
    _, kept = _probe("cli", {**env, "OPENBLAS_NUM_THREADS": "2"})
    assert kept == "2"
