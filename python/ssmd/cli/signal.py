"""``ssmd signal list|run|subscribe``: signals found, the live runner, fires as they come."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import JsonOut, echo_json, settings, table
from ssmd.settings import ENV

signal_app = group("signal", "Signals: list them, run one live, watch its fires (docs/signals.md).")
app.add_typer(signal_app, name="signal")

SignalsDir = Annotated[
    Path | None,
    typer.Option(
        "--signals-dir",
        envvar=ENV["signals_dir"],
        show_envvar=True,
        metavar="DIR",
        show_default="none: built-ins and entry points only",
        help="Folder of signals: DIR/<name>/signal.py.",
    ),
]
Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="A signal parameter; repeat for more (see ssmd signal list).",
    ),
]


def parse_params(values: list[str] | None) -> dict[str, str]:
    """``["k=v", …]`` → ``{"k": "v"}``, or a one-line error."""
    from ssmd.errors import ConfigError

    out: dict[str, str] = {}
    for v in values or []:
        name, eq, value = v.partition("=")
        if not eq or not name.strip():
            raise ConfigError(f"bad --param {v!r}: NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def signals_dir(flag: Path | None) -> Path | None:
    """The signals folder from the flag, ``SSMD_SIGNALS_DIR`` or ``ssmd.toml``."""
    return settings(signals_dir=flag).signals_dir


@signal_app.command(
    "list",
    epilog="Examples:\n\n\b\n  ssmd signal list\n  ssmd signal list --signals-dir ./signals --json",
)
def signal_list(signals_dir_: SignalsDir = None, json_out: JsonOut = False) -> None:
    """List the signals: built-ins, entry points (group ssmd.signals) and --signals-dir.

    A signal file that cannot be loaded is reported on stderr (file and line)
    and makes the exit status 1; the others are listed.
    """
    from ssmd.signals import discover

    found, errors = discover(signals_dir(signals_dir_))
    rows: list[dict[str, Any]] = []
    for key, src in sorted(found.items()):
        if key != src.id:
            continue  # a folder name that differs from the id
        sig = src.make()
        rows.append(
            {
                "id": src.id,
                "name": src.name,
                "origin": src.origin,
                "trigger": sig.trigger,
                "builders": sig.describe(),
                "params": {
                    n: {
                        "type": getattr(p.type, "__name__", str(p.type)),
                        "default": p.default,
                        "help": p.help,
                    }
                    for n, p in type(sig).params.items()
                },
                "native": sig.rule() is not None,
                "path": src.path,
            }
        )
    if json_out:
        echo_json({"signals": rows, "errors": errors})
    else:
        table(
            [
                ("ID", "ORIGIN", "TRIGGER", "BUILDERS", "PARAMS", "NAME"),
                *(
                    (
                        r["id"],
                        r["origin"],
                        r["trigger"],
                        r["builders"],
                        " ".join(f"{k}={v['default']}" for k, v in r["params"].items()) or "-",
                        r["name"],
                    )
                    for r in rows
                ),
            ],
            left=6,
        )
    for e in errors:
        typer.echo(f"ssmd: error: {e}", err=True)
    if errors:
        raise typer.Exit(1)
