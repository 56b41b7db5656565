"""``ssmd archive``: list and read the gzip JSONL archive.

Both commands also read archives of the original ssmd (``--legacy``, or on
their own when a directory holds nothing else): see :mod:`ssmd.archive.legacy`.
Damaged files are read up to and past the damage; each file that lost
content prints one ``ssmd: warning: …`` line on stderr, and ``--strict``
turns any warning into exit status 1 once everything readable was printed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import stat
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ssmd.archive import (
    ArchiveReader,
    ReadWarning,
    chunks,
    count_legacy_files,
    count_lines,
    find_legacy_files,
    is_legacy_layout,
    iter_legacy_lines,
    list_files,
    parse_date,
    read_manifest,
)
from ssmd.archive.bounds import EPOCH, time_bound
from ssmd.archive.legacy import LEGACY_FEEDS, legacy_venue
from ssmd.cli._app import app, group
from ssmd.cli.options import VENUES, Dir, JsonOut, echo_json, settings
from ssmd.errors import ConfigError
from ssmd.types import Channel

archive_app = group(
    "archive",
    "The gzip JSONL archive: `run` the archiver service (NATS -> archive); list, read and "
    "check what is on disk.",
)
app.add_typer(archive_app, name="archive")

_DAY = dt.timedelta(days=1)

DirOpt = Dir
VenueOpt = Annotated[
    list[str] | None,
    typer.Option("--venue", metavar="VENUE", help=f"Only this venue; repeat for more ({VENUES})."),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit with status 1 if any file lost content or was skipped (after printing"
        " everything readable); without it such files are warnings only.",
    ),
]
LegacyOpt = Annotated[
    bool,
    typer.Option(
        "--legacy",
        help="Read the original ssmd layout ({feed}/{stream}/{YYYY-MM-DD}/{HHMM}.jsonl.gz,"
        " raw venue messages); chosen by itself when the directory holds nothing else.",
    ),
]


def _root(path: Path | None) -> Path:
    root = settings(archive_dir=path).archive_dir
    if not root.is_dir():
        raise ConfigError(f"archive directory not found: {root}")
    return root


def _one(venues: list[str] | None, what: str) -> str | None:
    """The one ``--venue`` a reading mode takes (``None``: all)."""
    if not venues:
        return None
    if len(set(venues)) > 1:
        raise ConfigError(f"{what} reads one --venue at a time")
    return venues[0]


def _files(root: Path, venues: list[str] | None, first: str | None, last: str | None) -> list[str]:
    """The archive files of ``venues`` (all when none), ``.part`` files included."""
    wanted: list[str | None] = list(dict.fromkeys(venues)) if venues else [None]
    for v in wanted:
        _check_venue(root, v)
    return [f for v in wanted for f in list_files(root, v, first, last, include_parts=True)]


def _check_venue(root: Path, venue: str | None) -> None:
    if venue is None or (root / venue).is_dir():
        return
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    raise ConfigError(f"no venue {venue!r} in {root} (found: {', '.join(found) or 'nothing'})")


class _Warnings:
    """Prints each reader warning as one ``ssmd: warning: …`` line and counts them."""

    def __init__(self) -> None:
        self.count = 0
        log = logging.getLogger("ssmd.archive")
        if not log.handlers:  # other ssmd.archive warnings: one line, no traceback
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("ssmd: warning: %(message)s"))
            log.addHandler(handler)
            log.propagate = False

    def __call__(self, warning: ReadWarning) -> None:
        self.count += 1
        typer.echo(f"ssmd: warning: {warning}", err=True)

    def note(self, message: str) -> None:
        """A warning of the command's own (a filter that matched nothing, say)."""
        self.count += 1
        typer.echo(f"ssmd: warning: {message}", err=True)

    def check(self, strict: bool) -> None:
        """With ``--strict``, exit 1 when there was any warning."""
        if strict and self.count:
            s = "" if self.count == 1 else "s"
            typer.echo(f"ssmd: error: {self.count} warning{s} (--strict)", err=True)
            raise typer.Exit(1)


def _regular(path: Path, warnings: _Warnings) -> bool:
    """Whether ``path`` is a regular file (following symlinks); a warning when not."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        what = "a symbolic link to nothing" if path.is_symlink() else str(exc.strerror or exc)
    else:
        if stat.S_ISREG(mode):
            return True
        what = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a directory"
            if stat.S_ISDIR(mode)
            else ("not a regular file")
        )
    warnings(ReadWarning(path, f"skipped: {what}"))
    return False


def _legacy(root: Path, forced: bool, venues: list[str] | None) -> bool:
    """Whether to read ``root`` as an original-ssmd archive (says so when guessed)."""
    if not forced and not is_legacy_layout(root):
        return False
    _check_legacy_venue(root, _one(venues, "--legacy"))
    if not forced:
        typer.echo(
            f"ssmd: {root} holds only original-ssmd files"
            " ({feed}/{stream}/{date}/{HHMM}.jsonl.gz): reading them as with --legacy",
            err=True,
        )
    return True


def _check_legacy_venue(root: Path, venue: str | None) -> None:
    if venue is None:
        return
    wanted = legacy_venue(venue)
    feeds = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.lower() in LEGACY_FEEDS)
    if not any(LEGACY_FEEDS[f.lower()] == wanted for f in feeds):
        raise ConfigError(f"no venue {venue!r} in {root} (found: {', '.join(feeds) or 'nothing'})")


def _utc(ns: Any) -> str:
    if not isinstance(ns, int):
        return "-"
    t = dt.datetime.fromtimestamp(ns // 10**9, dt.timezone.utc)
    return f"{t:%Y-%m-%d %H:%M:%S}.{ns % 10**9 // 10**6:03d}"


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{n}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return str(n)  # pragma: no cover


def _kinds(counts: Counter[str]) -> str:
    return " ".join(f"{k}={n}" for k, n in sorted(counts.items()))


def _kind_of(subject: str) -> str:
    _, sep, rest = subject.partition(".json.")
    return rest.split(".", 1)[0] if sep else ""


def _table(rows: list[list[str]], right: set[int]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        typer.echo("  ".join(cells).rstrip())


@archive_app.command(
    "ls",
    epilog="Examples:\n\n\b\n"
    "  ssmd archive ls --dir /srv/ssmd/data --venue kraken --from 2026-01-05\n"
    "  ssmd archive ls --counts --json",
)
def ls(
    dir: DirOpt = None,
    venue: VenueOpt = None,
    date_from: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="First date (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="Last date (YYYY-MM-DD, included).")
    ] = None,
    counts: Annotated[
        bool, typer.Option("--counts", help="Add lines per kind (decompresses every file).")
    ] = False,
    legacy: LegacyOpt = False,
    strict: StrictOpt = False,
    json_out: JsonOut = False,
) -> None:
    """List archive files with their manifest figures (original-ssmd files: their sizes).

    Open .part files are listed too (no manifest figures until finalized).
    """
    root = _root(dir)
    first = None if date_from is None else time_bound("--from", date_from, end=False)[0]
    last = None if date_to is None else time_bound("--to", date_to, end=True)[0]
    warnings = _Warnings()
    if _legacy(root, legacy, venue):
        _ls_legacy(root, _one(venue, "--legacy"), first, last, counts=counts, warnings=warnings)
        warnings.check(strict)
        return
    listed = _files(
        root, venue, first.isoformat() if first else None, last.isoformat() if last else None
    )
    files = [name for name in listed if _regular(Path(name), warnings)]
    if not files and not json_out:
        typer.echo(f"no archive files in {root}", err=True)
        warnings.check(strict)
        return
    listing: list[dict[str, Any]] = []
    header = ["VENUE", "DATE", "FILE", "LINES", "RAW", "BYTES", "FIRST RX (UTC)", "LAST RX (UTC)"]
    if counts:
        header.append("KINDS")
    rows = [header]
    manifests: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    total_lines = total_raw = total_bytes = 0
    total_kinds: Counter[str] = Counter()
    for name in files:
        path = Path(name)
        day, ven = path.parent.name, path.parent.parent.name
        if (ven, day) not in manifests:
            m = read_manifest(root, ven, day)
            manifests[ven, day] = {f["name"]: f for f in m["files"] if isinstance(f, dict)}
        entry = manifests[ven, day].get(path.name, {})
        bytes_ = entry.get("bytes")
        if not isinstance(bytes_, int):
            try:
                bytes_ = path.stat().st_size
            except OSError:  # a .part finalized meanwhile
                bytes_ = 0
        lines, raw = entry.get("lines"), entry.get("raw_bytes")
        item: dict[str, Any] = {
            "venue": ven,
            "date": day,
            "file": path.name,
            "open": path.name.endswith(".part"),
            "lines": lines if isinstance(lines, int) else None,
            "raw_bytes": raw if isinstance(raw, int) else None,
            "bytes": bytes_,
            "first_rx": entry.get("first_rx"),
            "last_rx": entry.get("last_rx"),
        }
        listing.append(item)
        total_bytes += bytes_
        total_lines += lines if isinstance(lines, int) else 0
        total_raw += raw if isinstance(raw, int) else 0
        row = [
            ven,
            day,
            path.name,
            str(lines) if isinstance(lines, int) else "-",
            _size(raw),
            _size(bytes_),
            _utc(entry.get("first_rx")),
            _utc(entry.get("last_rx")),
        ]
        if counts:
            kinds: Counter[str] = Counter()
            for subject, n in count_lines([name], on_warning=warnings).items():
                kinds[_kind_of(subject)] += n
            total_kinds.update(kinds)
            row.append(_kinds(kinds))
            item["kinds"] = dict(sorted(kinds.items()))
        rows.append(row)
    if json_out:
        echo_json({"root": str(root), "files": listing})
        warnings.check(strict)
        return
    total = [
        "total",
        "",
        f"{len(files)} files",
        str(total_lines),
        _size(total_raw),
        _size(total_bytes),
        "",
        "",
    ]
    if counts:
        total.append(_kinds(total_kinds))
    rows.append(total)
    _table(rows, right={3, 4, 5})
    warnings.check(strict)


def _ls_legacy(
    root: Path,
    venue: str | None,
    first: dt.date | None,
    last: dt.date | None,
    *,
    counts: bool,
    warnings: _Warnings,
) -> None:
    files = find_legacy_files(root, venue, first, last, on_warning=warnings)
    if not files:
        typer.echo(f"no original-ssmd archive files in {root}", err=True)
        return
    files.sort(key=lambda f: (f.venue, f.stream, f.window_start_ns, f.part))
    header = ["VENUE", "STREAM", "DATE", "FILE", "BYTES"]
    if counts:
        header += ["LINES", "KINDS"]
    rows = [header]
    total_bytes = total_lines = 0
    total_kinds: Counter[str] = Counter()
    for f in files:
        try:
            size: int | None = f.path.stat().st_size
        except OSError:
            size = None
        total_bytes += size or 0
        rows.append([f.venue, f.stream, f.date.isoformat(), f.name, _size(size)])
    if counts:
        counted = count_legacy_files(files, on_warning=warnings)
        for row, (_, lines, subjects) in zip(rows[1:], counted, strict=True):
            kinds: Counter[str] = Counter()
            for subject, n in subjects.items():
                kinds[_kind_of(subject)] += n
            total_lines += lines
            total_kinds.update(kinds)
            row += [str(lines), _kinds(kinds)]
    total = ["total", "", "", f"{len(files)} files", _size(total_bytes)]
    if counts:
        total += [str(total_lines), _kinds(total_kinds)]
    rows.append(total)
    _table(rows, right={4, 5})


def _msg_only(chunk: bytes) -> bytes:
    lines = chunk.split(b"\n")
    lines.pop()
    out = []
    for line in lines:
        at = line.find(b',"msg":')
        out.append(line[at + 7 : -1] if at >= 0 else line)
    out.append(b"")
    return b"\n".join(out)


def _chunks(lines: Iterator[bytes], size: int = 4096) -> Iterator[bytes]:
    """Lines joined into newline-terminated chunks, like :class:`ArchiveReader` yields."""
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            batch.append(b"")
            yield b"\n".join(batch)
            batch = []
    if batch:
        batch.append(b"")
        yield b"\n".join(batch)


@archive_app.command(
    "cat",
    epilog="Examples:\n\n\b\n"
    "  ssmd archive cat --venue kraken --kind trade --instrument BTC/USD --from 2026-01-05\n"
    "  ssmd archive cat --venue kalshi --from 2026-01-05T14:00 --to 2026-01-05T15:00 --msg-only",
)
def cat(
    dir: DirOpt = None,
    venue: VenueOpt = None,
    time_from: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="WHEN",
            help="From this date or instant (YYYY-MM-DD, ISO datetime in UTC, or ns).",
        ),
    ] = None,
    time_to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="WHEN",
            help="Up to this date (inclusive) or instant (exclusive).",
        ),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            metavar="KIND",
            help="Only this subject kind; repeat for more"
            f" ({', '.join(c.value for c in Channel)}).",
        ),
    ] = None,
    instrument: Annotated[
        list[str] | None,
        typer.Option(
            "--instrument",
            metavar="INSTRUMENT",
            help="Only this instrument, e.g. BTC/USD (repeat for more).",
        ),
    ] = None,
    msg_only: Annotated[
        bool, typer.Option("--msg-only", help="Print only each line's venue message.")
    ] = False,
    legacy: LegacyOpt = False,
    strict: StrictOpt = False,
) -> None:
    """Write matching archive lines to stdout in receive-time order.

    Open .part files are read up to their last complete member; damaged
    files are read past the damage, with a warning on stderr per file.
    """
    root = _root(dir)
    rx_from = rx_to = None
    first = last = None
    if time_from is not None:
        first, rx_from = time_bound("--from", time_from, end=False)
    if time_to is not None:
        last, rx_to = time_bound("--to", time_to, end=True)
    if rx_from is not None and rx_to is not None and rx_to <= rx_from:
        raise ConfigError(f"--to {time_to} is not after --from {time_from}")
    reader: Iterable[bytes]
    warnings = _Warnings()
    files: list[str] = []
    if _legacy(root, legacy, venue):
        # rx = window start + line index: a line never leaves its file's day.
        lines = iter_legacy_lines(
            root,
            _one(venue, "--legacy"),
            first,
            last,
            kind or None,
            instrument or None,
            rx_from=rx_from,
            rx_to=rx_to,
            on_warning=warnings,
        )
        reader = _chunks(lines)
    else:
        if last is not None and last < dt.date.max:
            last += _DAY  # a late line can sit in the next day's first file
        files = _files(
            root, venue, first.isoformat() if first else None, last.isoformat() if last else None
        )
        merged = ArchiveReader(
            files, kinds=kind or None, instruments=instrument or None, rx_from=rx_from, rx_to=rx_to
        )
        reader = chunks(merged, warnings)
    out = sys.stdout.buffer
    wrote = False
    try:
        for chunk in reader:
            out.write(_msg_only(chunk) if msg_only else chunk)
            wrote = True
        out.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python
        # from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return
    if not wrote and (kind or instrument) and not legacy and files:
        _nothing_matched(files, kind or [], instrument or [], warnings)
    warnings.check(strict)


def _nothing_matched(
    files: list[str], kinds: list[str], instruments: list[str], warnings: _Warnings
) -> None:
    """Say why the filters matched nothing: a kind or instrument the files do not hold."""
    from difflib import get_close_matches

    from ssmd.core import subject_token

    subjects = count_lines(files)
    there_kinds = sorted({_kind_of(s) for s in subjects})
    there_insts = sorted({s.rsplit(".", 1)[1] for s in subjects if ".json." in s})
    known = sorted({c.value for c in Channel} | set(there_kinds))
    for k in kinds:
        if k not in there_kinds and k not in known:
            raise ConfigError(f"unknown --kind {k!r} (subject kinds: {', '.join(known)})")
        if k not in there_kinds:
            warnings.note(f"no line of kind {k!r} here (kinds here: {', '.join(there_kinds)})")
    for inst in instruments:
        token = subject_token(inst)
        if token not in there_insts:
            close = get_close_matches(token, there_insts, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            warnings.note(
                f"no line of instrument {inst!r} here ({len(there_insts):,} instruments"
                f" in these files{hint})"
            )


def _merge(results: list[Any]) -> Any:
    """One verify result of several venues' (each venue is checked on its own)."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    merged = dataclasses.replace(
        first,
        days=[d for r in results for d in r.days],
        files=[f for r in results for f in r.files],
        gaps=[g for r in results for g in r.gaps],
        duplicates=[d for r in results for d in r.duplicates],
        resets=[x for r in results for x in r.resets],
        issues=[i for r in results for i in r.issues],
        seconds=sum(r.seconds for r in results),
    )
    return merged


def _verify_day(option: str, value: str | None) -> dt.date | None:
    """A ``YYYY-MM-DD`` option value (``ssmd archive verify`` takes days, not instants)."""
    if value is None:
        return None
    try:
        day = parse_date(value)
    except ConfigError:
        raise ConfigError(f"bad {option} {value!r}: expected YYYY-MM-DD") from None
    if day < EPOCH.date():
        raise ConfigError(f"bad {option} {value!r}: before 1970-01-01")
    return day


@archive_app.command(
    "verify",
    epilog="Examples:\n\n\b\n"
    "  ssmd archive verify --dir /srv/ssmd/data --venue kraken --date 2026-01-05\n"
    "  ssmd archive verify --from 2026-01-01 --to 2026-01-07 --json",
)
def verify(
    dir: DirOpt = None,
    venue: VenueOpt = None,
    date: Annotated[
        str | None, typer.Option("--date", metavar="DATE", help="Only this day (YYYY-MM-DD).")
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="First day (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None,
        typer.Option("--to", metavar="DATE", help="Last day (YYYY-MM-DD, included)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of the report.")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bars on stderr.",
            show_default="when stderr is a terminal",
        ),
    ] = None,
) -> None:
    """Check files against their manifests and stream sequences for gaps and duplicates.

    Exit status 0 when everything matches, 1 on a mismatch, a bad, missing or
    unlisted file, an unrecorded gap or a duplicate.
    """
    import orjson

    from ssmd.archive.verify import VerifyResult, verify_archive

    def report(result: VerifyResult) -> None:
        """The per-day table, one line per error or note, and a summary line."""
        header = ["VENUE", "DATE", "FILES", "OK", "BAD", "OPEN", "LINES"]
        rows = [[*header, "GAPS REC", "GAPS UNREC", "DUPS"]]
        for d in result.days:
            rows.append(
                [
                    d.venue,
                    d.date,
                    str(d.files),
                    str(d.files_ok),
                    str(d.files_bad),
                    str(d.files_open),
                    str(d.lines),
                    str(d.gaps_recorded),
                    str(d.gaps_unrecorded),
                    str(d.duplicates),
                ]
            )
        _table(rows, right=set(range(2, 10)))
        for i in result.issues:
            where = " ".join(x for x in (i.venue, i.date, i.file) if x)
            typer.echo(f"{i.level}: {where}: {i.message}")

        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        files = result.files
        bad = sum(not f.ok for f in files)
        opened = sum(f.status == "open" for f in files)
        venues = len({d.venue for d in result.days})
        secs = result.seconds
        rate = f", {result.lines / secs / 1e6:.2f}M lines/s" if secs >= 1 else ""
        verdict = "OK" if result.ok else f"FAILED, {n(result.errors, 'error')}"
        typer.echo(
            f"verified {n(venues, 'venue')}, {n(len(result.days), 'day')}, {n(len(files), 'file')}"
            f" ({bad} bad, {opened} open), {n(result.lines, 'line')} in {secs:.1f} s{rate}:"
            f" {verdict}, {n(result.notes, 'note')}"
        )

    root = _root(dir)
    wanted: list[str | None] = list(dict.fromkeys(venue)) if venue else [None]
    for v in wanted:
        _check_venue(root, v)
    if date is not None and (date_from is not None or date_to is not None):
        raise ConfigError("--date cannot be combined with --from/--to")
    first = _verify_day("--date" if date else "--from", date or date_from)
    last = _verify_day("--date" if date else "--to", date or date_to)
    if first is not None and last is not None and last < first:
        raise ConfigError(f"--to {last} is before --from {first}")
    if sys.stderr.isatty() if progress is None else progress:
        from ssmd.secmaster.sync.base import make_progress

        with make_progress(True) as bars:
            result = _merge([verify_archive(root, v, first, last, progress=bars) for v in wanted])
    else:
        result = _merge([verify_archive(root, v, first, last) for v in wanted])
    if as_json:
        typer.echo(orjson.dumps(result.as_dict()).decode())
    elif not result.days:
        typer.echo(f"no archive days to verify in {root}", err=True)
    else:
        report(result)
    if not result.ok:
        raise typer.Exit(1)
