"""``ssmd archive export``: the archive as hive-partitioned Parquet (see :mod:`ssmd.archive.parquet`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ssmd.archive import ReadWarning, parse_date
from ssmd.archive.parquet import (
    KINDS,
    DayExport,
    export_parquet,
    parquet_dir,
    verify_parquet,
)
from ssmd.cli.archive import archive_app
from ssmd.cli.options import Dir, JsonOut, Venues, echo_json, require, settings, table
from ssmd.errors import ConfigError


class _Report:
    """Warnings as one ``ssmd: warning: …`` line each, counted."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, w: ReadWarning) -> None:
        self.count += 1
        typer.echo(f"ssmd: warning: {w}", err=True)


def _date(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_date(value).isoformat()
    except ConfigError:
        raise ConfigError(f"bad {option} {value!r}: expected a date, YYYY-MM-DD") from None


@archive_app.command(
    "export",
    epilog="Examples:\n\n\b\n"
    "  ssmd archive export --from 2024-03-01 --to 2024-03-07\n"
    "  ssmd archive export --venue kraken --kind trade --kind book_delta --out /srv/parquet\n"
    "  ssmd archive export --from 2024-03-01 --to 2024-03-01 --verify-only --json",
)
def export(
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="Output format: parquet.")
    ] = "parquet",
    venue: Venues = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            metavar="KIND",
            help=f"Only this normalized kind; repeat for more ({', '.join(KINDS)}). Default: all.",
        ),
    ] = None,
    date_from: Annotated[
        str | None,
        typer.Option("--from", metavar="DATE", help="First day (YYYY-MM-DD). Default: the first."),
    ] = None,
    date_to: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="DATE", help="Last day (YYYY-MM-DD, included). Default: the last."
        ),
    ] = None,
    dir_: Dir = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            show_default="{archive root}/parquet",
            help="Where the Parquet dataset goes: {out}/{venue}/{kind}/date=YYYY-MM-DD/.",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="After exporting, reconcile each file with its source (exit 1 if not)."
        ),
    ] = False,
    verify_only: Annotated[
        bool,
        typer.Option("--verify-only", help="Only reconcile an existing export; write nothing."),
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Export normalized records to Parquet: one schema per kind, rows in rx order.

    Each venue's days are read through the core (damaged members skipped
    with a warning naming the file) and written as
    {out}/{venue}/{kind}/date=YYYY-MM-DD/part-0.parquet (zstd), replacing an
    earlier export of the same days atomically; ssmd's gap, resync and
    stall lines go to the status kind. Exit status 1 when a source file was
    damaged (what was readable is exported, and the footer says so) or
    --verify found a mismatch.
    """
    if fmt != "parquet":
        raise ConfigError(f"bad --format {fmt!r}: only parquet is supported")
    require("pyarrow", "data", "ssmd archive export")
    root = settings(archive_dir=dir_).archive_dir
    if not root.is_dir():
        raise ConfigError(f"archive directory not found: {root}")
    first, last = _date("--from", date_from), _date("--to", date_to)
    if first and last and first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    venues = [v.value for v in dict.fromkeys(venue)] if venue else None
    kinds = list(dict.fromkeys(kind)) if kind else None
    report = _Report()
    started = time.perf_counter()
    doc: dict[str, Any] = {"out": str(parquet_dir(root, out))}
    failed = False
    if not verify_only:
        result = export_parquet(
            root,
            out,
            venues=venues,
            kinds=kinds,
            date_from=first,
            date_to=last,
            on_warning=report,
        )
        doc.update(
            files=[_file_doc(f) for f in result.files],
            removed=[str(p) for d in result.days for p in d.removed],
            days=[_day_doc(d) for d in result.days],
            rows=result.rows,
            lines=result.lines,
            complete=result.complete,
        )
        if not json_out:
            _print_export(result.days)
            span = time.perf_counter() - started
            opened = sum(d.open_files for d in result.days)
            note = f"; {opened} open .part files read as far as written" if opened else ""
            typer.echo(
                f"exported {result.lines:,} lines as {result.rows:,} rows into"
                f" {len(result.files)} files under {result.out} in {span:.1f} s{note}"
            )
        failed = not result.complete
    if verify or verify_only:
        checked = verify_parquet(
            root, out, venues=venues, kinds=kinds, date_from=first, date_to=last, on_warning=report
        )
        doc["verify"] = {
            "ok": checked.ok,
            "files": len(checked.files),
            "issues": [str(i) for i in checked.issues],
        }
        if not json_out:
            for issue in checked.issues:
                typer.echo(f"error: {issue}")
            state = "OK" if checked.ok else f"FAILED, {len(checked.issues)} mismatches"
            typer.echo(f"verified {len(checked.files)} files against their source: {state}")
        failed = failed or not checked.ok
    if json_out:
        echo_json(doc)
    if report.count:
        s = "" if report.count == 1 else "s"
        typer.echo(
            f"ssmd: error: {report.count} damaged source file{s}: the export holds what was"
            " readable and is not complete",
            err=True,
        )
    if failed:
        raise typer.Exit(1)


def _file_doc(f: Any) -> dict[str, Any]:
    return {
        "venue": f.venue,
        "kind": f.kind,
        "date": f.date,
        "path": str(f.path),
        "rows": f.rows,
        "seq": f.seq,
        "stream_seq": f.stream_seq,
        "bytes": f.bytes,
    }


def _day_doc(d: DayExport) -> dict[str, Any]:
    return {
        "venue": d.venue,
        "date": d.date,
        "sources": d.sources,
        "lines": d.lines,
        "lines_without_rows": d.lines_without_rows,
        "warnings": [str(w) for w in d.warnings],
    }


def _print_export(days: list[DayExport]) -> None:
    rows: list[list[Any]] = [["VENUE", "DATE", "KIND", "ROWS", "FIRST SEQ", "LAST SEQ", "BYTES"]]
    for d in days:
        for f in d.files:
            first, last = f.seq if f.seq else (None, None)
            rows.append([f.venue, d.date, f.kind, f.rows, first, last, f.bytes])
    if len(rows) > 1:
        table(rows, left=3)
