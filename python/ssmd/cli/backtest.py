"""``ssmd backtest run|list|show``: a signal over the archive, and the runs kept."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import Dir, JsonOut, Venues, echo_json, require, settings, table
from ssmd.cli.signal import Instruments, Params, PythonEvaluate, SignalsDir, parse_params
from ssmd.errors import ConfigError
from ssmd.settings import ENV

backtest_app = group(
    "backtest", "Replay the archive through a signal and keep the runs (docs/backtest.md)."
)
app.add_typer(backtest_app, name="backtest")

RunsDir = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir",
        envvar=ENV["runs_dir"],
        show_envvar=True,
        metavar="DIR",
        show_default="./runs",
        help="Where runs are written: DIR/<run id>/.",
    ),
]


def _runs_dir(flag: Path | None) -> Path:
    return settings(runs_dir=flag).runs_dir


class _Progress:
    """One status line on stderr, redrawn at most every 0.2 s."""

    def __init__(self, rx_from: int | None, rx_to: int | None) -> None:
        self.rx_from, self.rx_to = rx_from, rx_to
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, records: int, rx: int | None) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        import datetime as dt

        where = ""
        if rx is not None:
            where = dt.datetime.fromtimestamp(rx / 1e9, dt.timezone.utc).strftime(
                " at %Y-%m-%d %H:%M"
            )
            if self.rx_from is not None and self.rx_to is not None and self.rx_to > self.rx_from:
                pct = min(100.0, max(0.0, 100 * (rx - self.rx_from) / (self.rx_to - self.rx_from)))
                where += f" ({pct:.0f} %)"
        rate = records / max(now - self.t0, 1e-9)
        sys.stderr.write(f"\r{records:,} records{where}, {rate / 1e6:.2f} M/s   ")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\r" + " " * 70 + "\r")
        sys.stderr.flush()


def _yaml_defaults(path: str | None) -> dict[str, Any]:
    """The ``backtest.yaml`` beside a signal: venue(s), from, to, instruments, params."""
    if not path:
        return {}
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping (venue, from, to, instruments, params)")
    known = {"venue", "venues", "from", "to", "instruments", "params"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return doc


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in (v if isinstance(v, list) else [v])]


@backtest_app.command(
    "run",
    epilog="Examples:\n\n\b\n"
    "  ssmd backtest run volume-1m-30min --from 2026-01-05 --to 2026-01-05\n"
    "  ssmd backtest run price-jump --from 2026-01-05T12:00 --to 2026-01-05T18:00 --venue kraken"
    " --param threshold=0.02\n"
    "  ssmd backtest run big-volume --signals-dir ./signals --instrument KXBTCD-26JAN0517-T98999.99"
    " --plot KXBTCD-26JAN0517-T98999.99",
)
def backtest_run(
    name: Annotated[str, typer.Argument(metavar="SIGNAL", help="Signal id or folder name.")],
    date_from: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="WHEN",
            help="Start: a date (its whole day), an ISO datetime (UTC) or ns.",
            show_default="backtest.yaml's, else the archive's first day",
        ),
    ] = None,
    date_to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="WHEN",
            help="End: a date (included) or an instant (excluded).",
            show_default="backtest.yaml's, else the archive's last day",
        ),
    ] = None,
    venue: Venues = None,
    instrument: Instruments = None,
    dir_: Dir = None,
    params: Params = None,
    signals_dir_: SignalsDir = None,
    runs_dir: RunsDir = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            metavar="ID",
            help="Name of the run's directory.",
            show_default="<UTC time>-<signal>-<random>",
        ),
    ] = None,
    chunk_lines: Annotated[
        int,
        typer.Option(
            "--chunk-lines",
            min=1,
            max=1_000_000,
            metavar="N",
            help="Lines per call into the engine (fires do not depend on it).",
        ),
    ] = 8192,
    python_evaluate: PythonEvaluate = False,
    plot: Annotated[
        list[str] | None,
        typer.Option(
            "--plot",
            metavar="INSTRUMENT",
            help="Also write plot-<instrument>.png: price, dollar volume and fires (needs matplotlib); repeat for more.",
        ),
    ] = None,
    legacy: Annotated[
        bool | None,
        typer.Option(
            "--legacy/--no-legacy",
            help="Read the original ssmd's layout.",
            show_default="when the directory holds only that",
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="A progress line on stderr.",
            show_default="when stderr is a terminal",
        ),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Replay the archive through a signal, in receive-time order across venues.

    The same engine as `ssmd signal run`: the same fires, with the same message
    ids, as a live runner that saw the same lines, whatever --chunk-lines. Writes
    fires.jsonl, fires.csv and summary.json under --runs-dir/<run id>/ and prints
    a summary.
    """
    from ssmd.archive.bounds import time_bound
    from ssmd.signals import find_signal
    from ssmd.signals.backtest import Backtest, run_backtest, write_report

    s = settings(archive_dir=dir_, signals_dir=signals_dir_, runs_dir=runs_dir)
    src = find_signal(name, s.signals_dir)
    defaults = _yaml_defaults(src.backtest_file)
    if plot:
        require("matplotlib", "plot", "ssmd backtest run --plot")
    values = {
        **{str(k): v for k, v in (defaults.get("params") or {}).items()},
        **parse_params(params),
    }
    src.make(values)  # unknown or bad parameters: an error before any reading
    first = date_from or (str(defaults["from"]) if defaults.get("from") is not None else None)
    last = date_to or (str(defaults["to"]) if defaults.get("to") is not None else None)
    d0, rx_from = time_bound("--from", first, end=False) if first else (None, None)
    d1, rx_to = time_bound("--to", last, end=True) if last else (None, None)
    if rx_from is not None and rx_to is not None and rx_to <= rx_from:
        raise ConfigError(f"--to {last} is not after --from {first}")
    venues = [v.value for v in venue or []] or _as_list(
        defaults.get("venues", defaults.get("venue"))
    )
    from ssmd.types import Venue

    venues = [Venue.parse(v).value for v in venues]
    bt = Backtest(
        src,
        values,
        root=s.archive_dir,
        date_from=d0,
        date_to=d1,
        rx_from=rx_from,
        rx_to=rx_to,
        venues=venues,
        instruments=list(instrument or []) or _as_list(defaults.get("instruments")),
        python=python_evaluate,
        chunk_lines=chunk_lines,
        legacy=legacy,
    )
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(rx_from, rx_to) if show else None
    tracer = None
    if plot:
        from ssmd.signals.plot import Tracer

        tracer = Tracer(src.make(values), plot)
    warnings: list[str] = []
    try:
        result = run_backtest(
            bt,
            progress=bar,
            on_warning=lambda w: warnings.append(str(w)),
            on_chunk=tracer.feed if tracer is not None else None,
        )
    finally:
        if bar is not None:
            bar.done()
    for w in warnings:
        typer.echo(f"ssmd: warning: {w}", err=True)
    out = write_report(result, s.runs_dir, run_id)
    if tracer is not None:
        for p in tracer.write(out, result.fires):
            typer.echo(f"ssmd: plot {p}", err=True)
    from ssmd.signals.backtest import load_run

    _, doc = load_run(s.runs_dir, out.name)
    if json_out:
        echo_json({**doc, "dir": str(out)})
        return
    _print_summary(doc, out)


def _print_summary(doc: dict[str, Any], out: Path | None = None) -> None:
    sig = doc["signal"]
    c = doc["counters"]
    rate = doc.get("records_per_cpu_second")
    table(
        [
            (
                "RUN",
                "SIGNAL",
                "EVAL",
                "FILES",
                "LINES",
                "RECORDS",
                "INSTRUMENTS",
                "FIRES",
                "GAPS",
                "SECONDS",
                "RECORDS/CPU-S",
            ),
            (
                doc["run_id"],
                sig["id"],
                sig["evaluated_in"],
                doc["archive"]["files"],
                c["lines"],
                c["records"],
                doc["instruments_seen"],
                doc["fires"],
                doc["gaps"]["count"],
                doc["seconds"],
                rate,
            ),
        ],
        left=3,
    )
    top = sorted(doc["fires_per_instrument"].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    if top:
        typer.echo("")
        table([("INSTRUMENT", "FIRES"), *top])
    if doc.get("errors"):
        typer.echo(f"\n{len(doc['errors'])} instrument(s) with evaluation errors, e.g.:")
        k, v = next(iter(doc["errors"].items()))
        typer.echo(f"  {k}: {v}")
    if out is not None:
        typer.echo(f"\nfires and summary in {out}")


@backtest_app.command(
    "list",
    epilog="Examples:\n\n\b\n  ssmd backtest list\n  ssmd backtest list --runs-dir /srv/runs --json",
)
def backtest_list(runs_dir: RunsDir = None, json_out: JsonOut = False) -> None:
    """List the runs kept in --runs-dir, oldest first."""
    from ssmd.signals.backtest import list_runs

    runs = list_runs(_runs_dir(runs_dir))
    if json_out:
        echo_json(runs)
        return
    if not runs:
        typer.echo(f"no runs in {_runs_dir(runs_dir)}")
        return
    table(
        [
            ("RUN", "SIGNAL", "FROM", "TO", "RECORDS", "FIRES", "SECONDS"),
            *(
                (
                    r.get("run_id"),
                    r.get("signal", {}).get("id"),
                    r.get("range", {}).get("from"),
                    r.get("range", {}).get("to"),
                    r.get("records"),
                    r.get("fires"),
                    r.get("seconds"),
                )
                for r in runs
            ),
        ],
        left=4,
    )


@backtest_app.command(
    "show",
    epilog="Examples:\n\n\b\n  ssmd backtest show 20260105T120000Z-volume-1m-30min-1a2b3c\n  ssmd backtest show 20260105T12 --json",
)
def backtest_show(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id, or the start of one.")],
    runs_dir: RunsDir = None,
    fires: Annotated[
        int, typer.Option("--fires", min=0, metavar="N", help="Also print the first N fires.")
    ] = 0,
    json_out: JsonOut = False,
) -> None:
    """Show a run's summary (and its first fires)."""
    from ssmd.signals.backtest import load_run

    d, doc = load_run(_runs_dir(runs_dir), run)
    head: list[str] = []
    if fires:
        with open(d / "fires.jsonl", encoding="utf-8") as f:
            for _, line in zip(range(fires), f, strict=False):
                head.append(line.rstrip("\n"))
    if json_out:
        import json

        echo_json({**doc, "dir": str(d), "first_fires": [json.loads(x) for x in head]})
        return
    _print_summary(doc, d)
    if head:
        from ssmd.cli.signal import format_fire

        typer.echo("")
        for line in head:
            typer.echo(format_fire(line.encode()))
