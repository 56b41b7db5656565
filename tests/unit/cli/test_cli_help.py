"""Every command's ``--help``, as a user sees it, against a reviewed snapshot.

A change to any flag, default, environment variable or help text shows up
here as a diff. After a deliberate change, regenerate and review:

    SSMD_UPDATE_HELP=1 python -m pytest tests/unit/cli/test_cli_help.py   # or: make help-update
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssmd.cli import commands, load_commands

HELP_DIR = Path(__file__).parent / "help"
PATHS = commands()
UPDATE = os.environ.get("SSMD_UPDATE_HELP") == "1"


def _file(path: tuple[str, ...]) -> Path:
    return HELP_DIR / ("_".join(("ssmd", *path)) + ".txt")


def render(path: tuple[str, ...], flag: str = "-h") -> str:
    """``ssmd PATH -h`` at 100 columns."""
    r = CliRunner().invoke(
        load_commands(), [*path, flag], prog_name="ssmd", terminal_width=100, env={"TERM": "dumb"}
    )
    assert r.exit_code == 0, (path, r.output)
    return r.output


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(("ssmd", *p)))
def test_help_matches_its_snapshot(path: tuple[str, ...]) -> None:
    text = render(path)
    f = _file(path)
    if UPDATE:
        HELP_DIR.mkdir(exist_ok=True)
        f.write_text(text, encoding="utf-8")
    assert f.is_file(), f"no snapshot {f.name}: run SSMD_UPDATE_HELP=1 pytest {__file__}"
    assert text == f.read_text(encoding="utf-8"), f"{f.name} changed: review, then update it"


def test_no_stale_snapshots() -> None:
    stale = {p.name for p in HELP_DIR.glob("*.txt")} - {_file(p).name for p in PATHS}
    if UPDATE:
        for name in stale:
            (HELP_DIR / name).unlink()
        stale = set()
    assert not stale, f"snapshots of commands that are gone: {sorted(stale)}"


# Placeholders a reader cannot act on: a type name instead of what to write.
_OPAQUE = re.compile(r"<(str|int|float|bool|path|list\[str\]|text)>|<\w+ range>|\bNone\b")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(("ssmd", *p)))
def test_help_is_readable(path: tuple[str, ...]) -> None:
    text = render(path)
    assert not _OPAQUE.findall(text), _OPAQUE.findall(text)
    assert render(path, "--help") == text  # -h and --help are the same
    assert "shared/" not in text and "DESIGN" not in text  # the project explains itself


def _leaves() -> list[tuple[str, ...]]:
    return [p for p in PATHS if p and not any(q[: len(p)] == p and q != p for q in PATHS)]


@pytest.mark.parametrize("path", _leaves(), ids=lambda p: " ".join(("ssmd", *p)))
def test_every_command_shows_an_example(path: tuple[str, ...]) -> None:
    if path == ("version",):
        return  # nothing to show beyond its name
    text = render(path)
    _, sep, examples = text.partition("\n  Examples:\n")
    assert sep, f"ssmd {' '.join(path)} -h has no Examples"
    assert f"ssmd {' '.join(path)}" in examples, examples


def test_the_environment_that_names_streams_is_shown() -> None:
    for path in (("connect",), ("archive", "run"), ("archive", "status"), ("streams", "ls")):
        assert "SSMD_ENV" in render(path), path


def test_every_environment_setting_is_shown_where_it_is_a_flag() -> None:
    from ssmd.settings import ENV

    shown = " ".join(" ".join(render(p).split()) for p in PATHS)
    for name in ("archive_dir", "nats_url", "database_url", "log_level", "log_format", "config"):
        assert f"env var: {ENV[name]}" in shown, name
