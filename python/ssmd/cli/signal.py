"""``ssmd signal list|run|subscribe``: signals found, the live runner, fires as they come."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import (
    JsonOut,
    LogFormat,
    LogLevel,
    Nats,
    StopAfter,
    Venues,
    duration,
    echo_json,
    need_nats,
    require,
    service_settings,
    settings,
    table,
)
from ssmd.errors import ConfigError
from ssmd.settings import ENV
from ssmd.signals.api import ID_PATTERN

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


Consumer = Annotated[
    str | None,
    typer.Option(
        "--consumer",
        metavar="NAME",
        show_default="signal-<id>",
        help="Durable consumer of each venue stream (and its edges in the ssmd_signals bucket).",
    ),
]
Instruments = Annotated[
    list[str] | None,
    typer.Option(
        "--instrument",
        metavar="ID",
        help="Only this instrument (raw venue id or subject token); repeat for more.",
    ),
]
PythonEvaluate = Annotated[
    bool,
    typer.Option(
        "--python-evaluate",
        help="Call the signal's Python evaluate even when it has a rule evaluated in Rust.",
    ),
]


def load_signal(name: str, signals_dir_: Path | None, params: list[str] | None) -> Any:
    """``(source, instance)`` of a signal by name, with ``--param`` values."""
    from ssmd.signals import find_signal

    src = find_signal(name, signals_dir(signals_dir_))
    return src, src.make(parse_params(params))


@signal_app.command(
    "run",
    epilog="Examples:\n\n\b\n"
    "  ssmd signal run volume-1m-30min --nats nats://127.0.0.1:4222\n"
    "  ssmd signal run price-jump --param threshold=0.1 --param window=5m --venue kraken\n"
    "  ssmd signal run big-volume --signals-dir ./signals --consumer big-volume-2",
)
def signal_run(
    name: Annotated[str, typer.Argument(metavar="SIGNAL", help="Signal id or folder name.")],
    params: Params = None,
    signals_dir_: SignalsDir = None,
    nats: Nats = None,
    venue: Venues = None,
    instrument: Instruments = None,
    consumer: Consumer = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=100_000, metavar="N", help="Messages per fetch.")
    ] = 2000,
    python_evaluate: PythonEvaluate = False,
    duration_: StopAfter = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    json_out: JsonOut = False,
) -> None:
    """Run a signal live: the venue streams in, fires to signals.<id>.<instrument> (SIGNALS).

    A durable consumer per venue stream; each batch's fires are published (with
    message ids that name the record that fired) and its edges stored in the
    ssmd_signals KV bucket before the batch is acknowledged, so a restart, even
    after SIGKILL, neither fires twice nor misses a fire. Windows are warmed up
    from the streams at start.
    """
    require("nats", "bus", "ssmd signal run")
    s = service_settings(
        nats_url=nats, signals_dir=signals_dir_, log_level=log_level, log_format=log_format
    )
    url = need_nats(s.nats_url, "ssmd signal run")
    _, sig = load_signal(name, signals_dir_, params)
    from ssmd.bus.service import check_venues
    from ssmd.runtime.shutdown import run_until_stopped
    from ssmd.signals import SignalRun
    from ssmd.signals.live import SignalRunner

    venues = check_venues([v.value for v in venue or []])
    run = SignalRun(sig, venues=venues, instruments=instrument or None, python=python_evaluate)
    runner = SignalRunner(run, url, env=s.env, venues=venues, consumer=consumer, batch=batch)

    stats = asyncio.run(run_until_stopped(runner.run, duration_))
    d = stats.as_dict()
    d["counters"] = run.counters()
    if json_out:
        echo_json(d)
        return
    c = d["counters"]
    typer.echo(
        f"ssmd signal {sig.id}: {stats.messages:,} message(s), {c['records']:,} record(s),"
        f" {stats.fires:,} fire(s) published, {c['errors']:,} evaluation error(s),"
        f" {stats.edges_written:,} edge change(s) stored"
    )


@signal_app.command(
    "subscribe",
    epilog="Examples:\n\n\b\n"
    "  ssmd signal subscribe volume-1m-30min\n"
    "  ssmd signal subscribe all --json --since 1h",
)
def signal_subscribe(
    name: Annotated[
        str, typer.Argument(metavar="SIGNAL", help="Signal id, or 'all' for every signal.")
    ],
    nats: Nats = None,
    since: Annotated[
        float | None,
        typer.Option(
            "--since",
            parser=duration,
            metavar="DURATION",
            help="Print the fires stored this long back first.",
            show_default="only new fires",
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, metavar="N", help="Stop after N fires.")
    ] = None,
    duration_: StopAfter = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON fire body per line.")] = False,
) -> None:
    """Print a signal's fires as they arrive (from the SIGNALS stream, each once)."""
    require("nats", "bus", "ssmd signal subscribe")
    s = settings(nats_url=nats)
    url = need_nats(s.nats_url, "ssmd signal subscribe")
    if name != "all" and not ID_PATTERN.fullmatch(name):
        raise ConfigError(f"bad signal id {name!r}: lower-case letters, digits, - and _")
    subject = "signals.>" if name == "all" else f"signals.{name}.>"
    from ssmd.signals.live import watch_fires

    def show(body: bytes) -> None:
        if json_out:
            typer.echo(body.decode())
        else:
            typer.echo(format_fire(body))

    asyncio.run(watch_fires(url, subject, show, since=since, count=count, duration=duration_))


def format_fire(body: bytes) -> str:
    """One line for people: time, signal, venue, instrument, payload fields."""
    import datetime as dt

    import orjson

    d = orjson.loads(body)
    rx = int(d.get("rx") or 0)
    when = dt.datetime.fromtimestamp(rx / 1e9, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    fields = []
    for k, v in (d.get("payload") or {}).items():
        fields.append(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}")
    return f"{when[:-3]}Z  {d.get('signal')}  {d.get('venue')}  {d.get('instrument')}  {' '.join(fields)}"
