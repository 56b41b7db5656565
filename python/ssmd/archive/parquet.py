"""Parquet export of the archive (docs/data.md), and its reconciliation.

:func:`export_parquet` turns the gzip JSONL archive into hive-partitioned
Parquet, one explicit schema per normalized kind::

    {out}/{venue}/{kind}/date=YYYY-MM-DD/part-0.parquet

The columnar conversion happens in the Rust core (:class:`ssmd._core.ColumnReader`:
the archive's merging, damage-skipping reader, the venue's normalizer, and
Arrow arrays handed over through the Arrow C data interface); pyarrow only
writes the files (zstd, rows in ``rx`` order, one row group per batch).
Each file's footer holds ``ssmd.schema_version``, the source files, the
lines read per subject kind, the rows, the first/last venue ``seq``,
``rx`` and the JetStream sequence range, and the warnings of the read.
A day is written to temporary files and each is renamed over the old one
only once it is complete, so a reader sees the old file or the new one;
a kind the day no longer has is removed. The same archive gives the same
bytes on every run.

:func:`verify_parquet` re-reads the source of each day and checks every
file against it: rows, first/last ``seq`` and ``rx``, stream sequence
range, rows in ``rx`` order, and that the source files are the ones the
footer names (same sizes).

pyarrow comes with the ``[data]`` extra and is imported only when these
functions run.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ssmd._core import (
    COLUMNS_SCHEMA_VERSION,
    ColumnReader,
    ReadWarning,
    arrow_schema,
    column_kinds,
    list_files,
)
from ssmd._core import read_manifest as _read_manifest
from ssmd.archive.reading import OnWarning, warn
from ssmd.errors import ConfigError, SinkError
from ssmd.types import Venue

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "FILE_NAME",
    "KINDS",
    "DayExport",
    "ExportResult",
    "ExportedFile",
    "VerifyIssue",
    "VerifyResult",
    "day_files",
    "export_parquet",
    "need_data",
    "parquet_dir",
    "verify_parquet",
]

#: The normalized kinds, each with its own schema and directory.
KINDS: tuple[str, ...] = tuple(column_kinds())
#: The one file of each partition.
FILE_NAME = "part-0.parquet"
#: Rows per batch (and Parquet row group). Half a million: a busy day still has a row
#: group per core to read in parallel, and a 1 M-row day is exported 4 % faster than
#: with 262 144 (fewer zstd contexts and column buffers), for ~30 MB more memory.
DEFAULT_BATCH_ROWS = 524_288

PathArg = str | os.PathLike[str]


def need_data(module: str, what: str) -> ModuleType:
    """Import ``module`` (pyarrow, polars) or raise the one-line ``[data]`` extra error."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{what} needs the [data] extra (pyarrow, polars): pip install 'ssmd[data]'"
            " (from a checkout: pip install '.[data]')"
        ) from None


def parquet_dir(root: PathArg, out: PathArg | None = None) -> Path:
    """The export directory: ``out``, else ``{root}/parquet``."""
    return Path(out) if out is not None else Path(root) / "parquet"


@dataclass
class ExportedFile:
    """One Parquet file written (or checked)."""

    venue: str
    kind: str
    date: str
    path: Path
    rows: int
    #: first and last venue sequence number, smallest and largest stream sequence
    seq: tuple[int, int] | None = None
    stream_seq: tuple[int, int] | None = None
    bytes: int = 0


@dataclass
class DayExport:
    """What exporting one venue's day did."""

    venue: str
    date: str
    sources: list[dict[str, Any]]
    files: list[ExportedFile] = field(default_factory=list)
    #: files of kinds the day no longer has, removed
    removed: list[Path] = field(default_factory=list)
    #: envelope lines read per subject kind, and those that gave no row
    lines: dict[str, int] = field(default_factory=dict)
    lines_without_rows: dict[str, int] = field(default_factory=dict)
    warnings: list[ReadWarning] = field(default_factory=list)

    @property
    def open_files(self) -> int:
        return sum(1 for s in self.sources if s["open"])


@dataclass
class ExportResult:
    """What :func:`export_parquet` did, day by day."""

    out: Path
    days: list[DayExport]

    @property
    def files(self) -> list[ExportedFile]:
        return [f for d in self.days for f in d.files]

    @property
    def warnings(self) -> list[ReadWarning]:
        return [w for d in self.days for w in d.warnings]

    @property
    def complete(self) -> bool:
        """No source file lost content or was skipped."""
        return not self.warnings

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def lines(self) -> int:
        return sum(sum(d.lines.values()) for d in self.days)


def _kinds(kinds: Iterable[str] | None) -> list[str]:
    if kinds is None:
        return list(KINDS)
    out = list(dict.fromkeys(kinds))
    for k in out:
        if k not in KINDS:
            raise ConfigError(f"unknown kind {k!r} (the normalized kinds: {', '.join(KINDS)})")
    return out


def _venues(root: Path, venues: Iterable[str | Venue] | None) -> list[str]:
    if venues is None:
        return [v.value for v in Venue if (root / v.value).is_dir()]
    return list(dict.fromkeys(Venue.parse(v).value for v in venues))


def day_files(
    root: PathArg,
    venues: Iterable[str | Venue] | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> list[tuple[str, str, list[str]]]:
    """``(venue, date, files)`` of every archive day in the range, ``.part`` files included."""
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"archive directory not found: {base}")
    out: list[tuple[str, str, list[str]]] = []
    for venue in _venues(base, venues):
        by_day: dict[str, list[str]] = {}
        for f in list_files(base, venue, date_from, date_to, include_parts=True):
            by_day.setdefault(Path(f).parent.name, []).append(f)
        out.extend((venue, day, files) for day, files in sorted(by_day.items()))
    return out


def _sources(root: Path, files: list[str]) -> list[dict[str, Any]]:
    """What the footer says of each source file (manifest figures where it has them)."""
    manifests: dict[Path, dict[str, dict[str, Any]]] = {}
    out = []
    for f in files:
        p = Path(f)
        day = p.parent
        if day not in manifests:
            try:
                m = _read_manifest(day) or {}
            except SinkError:
                m = {}
            manifests[day] = {e["name"]: e for e in m.get("files", [])}
        entry = manifests[day].get(p.name, {})
        try:
            size = p.stat().st_size
        except OSError:
            size = None
        out.append(
            {
                "file": p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p),
                "bytes": size,
                "open": p.name.endswith(".part"),
                "lines": entry.get("lines"),
                "sha256": entry.get("sha256"),
            }
        )
    return out


def _pair(v: Any) -> tuple[int, int] | None:
    return None if v is None else (int(v[0]), int(v[1]))


def _footer(
    venue: str,
    kind: str,
    date: str,
    sources: list[dict[str, Any]],
    figures: dict[str, Any],
    warnings: list[ReadWarning],
) -> dict[str, str]:
    k = figures["kinds"].get(kind, {})
    return {
        "ssmd.schema_version": COLUMNS_SCHEMA_VERSION,
        "ssmd.venue": venue,
        "ssmd.kind": kind,
        "ssmd.date": date,
        "ssmd.source_files": json.dumps(sources, separators=(",", ":")),
        "ssmd.lines": json.dumps(figures["lines"], separators=(",", ":"), sort_keys=True),
        "ssmd.rows": str(k.get("rows", 0)),
        "ssmd.rx": json.dumps(k.get("rx")),
        "ssmd.seq": json.dumps(k.get("seq")),
        "ssmd.stream_seq": json.dumps(k.get("stream_seq")),
        "ssmd.complete": "true" if not warnings else "false",
        "ssmd.warnings": json.dumps([str(w) for w in warnings]),
    }


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --out {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out} is not writable")


def export_parquet(
    root: PathArg,
    out: PathArg | None = None,
    *,
    venues: Iterable[str | Venue] | None = None,
    kinds: Iterable[str] | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    on_warning: OnWarning | None = None,
    on_day: Callable[[DayExport], None] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> ExportResult:
    """Export the archive's days ``date_from..=date_to`` (``YYYY-MM-DD``) to Parquet.

    Every file that lost content while reading gives a :class:`ReadWarning`
    to ``on_warning`` (default: logged) and makes the result not
    :attr:`~ExportResult.complete`; what was readable is exported.
    """
    pa = need_data("pyarrow", "Parquet export")
    pq = need_data("pyarrow.parquet", "Parquet export")
    base = Path(root)
    selected = _kinds(kinds)
    days = day_files(base, venues, date_from, date_to)
    if not days:
        span = f"{date_from or 'the first day'} to {date_to or 'the last day'}"
        raise ConfigError(f"no archive files in {base} from {span}")
    target = parquet_dir(base, out)
    _check_out(target)
    report = warn if on_warning is None else on_warning
    result = ExportResult(target, [])
    for venue, date, files in days:
        day = _export_day(pa, pq, base, target, venue, date, files, selected, batch_rows)
        for w in day.warnings:
            report(w)
        result.days.append(day)
        if on_day is not None:
            on_day(day)
    return result


#: columns with min/max statistics per row group: those readers filter on (the
#: statistics of the decimal text and ids cost a fifth of the write, and no
#: query prunes row groups by them)
_STATISTICS = ("rx", "ts", "instrument", "seq", "stream_seq")
#: strings with few distinct values: dictionary-encoded. Prices too: a day of one
#: instrument trades and quotes at thousands to tens of thousands of prices, not a new
#: one every row (pyarrow falls back to plain pages by itself when a column chunk's
#: dictionary outgrows 1 MiB)
_DICTIONARY = {
    "venue",
    "instrument",
    "side",
    "conn",
    "mode",
    "origin",
    "status",
    "event",
    "price",
    "bid",
    "ask",
    "last",
}


def _encodings(pa: Any, schema: Any) -> tuple[list[str], dict[str, str]]:
    """``(dictionary columns, column encodings)`` of a kind's schema.

    Receive and exchange times, sequence numbers and indices are nearly
    sorted integers: delta-encoded. Sizes, ids and JSON detail: plain (with zstd
    they are as small as delta byte arrays within a few percent, and polars
    decodes them four times faster). Low-cardinality strings and prices: a
    dictionary (a day of trades: 8 % smaller, read 12 % faster than plain prices).
    (``benches/python/bench_data.py`` measures size and read speed.)
    """
    dictionary: list[str] = []
    encodings: dict[str, str] = {}

    def visit(field: Any, path: str) -> None:
        t = field.type
        if pa.types.is_list(t):
            visit(t.value_field, f"{path}.list.element")
        elif pa.types.is_struct(t):
            for i in range(t.num_fields):
                visit(t.field(i), f"{path}.{t.field(i).name}")
        elif pa.types.is_string(t):
            if field.name in _DICTIONARY:
                dictionary.append(path)
            else:
                encodings[path] = "PLAIN"
        elif (pa.types.is_integer(t) or pa.types.is_timestamp(t)) and field.name != "checksum":
            encodings[path] = "DELTA_BINARY_PACKED"

    for f in schema:
        visit(f, f.name)
    return dictionary, encodings


def _partition(out: Path, venue: str, kind: str, date: str) -> Path:
    return out / venue / kind / f"date={date}" / FILE_NAME


def _export_day(
    pa: Any,
    pq: Any,
    root: Path,
    out: Path,
    venue: str,
    date: str,
    files: list[str],
    kinds: list[str],
    batch_rows: int,
) -> DayExport:
    sources = _sources(root, files)
    reader = ColumnReader(files, venue, kinds=kinds, batch_rows=batch_rows, views=False)
    writers: dict[str, tuple[Any, Path, Path]] = {}
    try:
        for kind, batch in reader:
            w = writers.get(kind)
            if w is None:
                final = _partition(out, venue, kind, date)
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
                schema = pa.schema(arrow_schema(kind, views=False))
                dictionary, encodings = _encodings(pa, schema)
                writer = pq.ParquetWriter(
                    tmp,
                    schema,
                    compression="zstd",
                    use_dictionary=dictionary,
                    column_encoding=encodings,
                    sorting_columns=[pq.SortingColumn(0)],
                    write_statistics=[c for c in _STATISTICS if c in schema.names],
                    # the system allocator: pyarrow's default (mimalloc) hands its
                    # page buffers back to the kernel and faults fresh zeroed pages
                    # in for every row group, a tenth of the export's CPU time
                    memory_pool=pa.system_memory_pool(),
                )
                w = writers[kind] = (writer, tmp, final)
            w[0].write_batch(pa.record_batch(batch))
        figures = reader.figures()
        warnings = reader.warnings
        day = DayExport(
            venue,
            date,
            sources,
            lines=dict(figures["lines"]),
            lines_without_rows=dict(figures["lines_without_rows"]),
            warnings=warnings,
        )
        for kind, (writer, tmp, final) in writers.items():
            writer.add_key_value_metadata(_footer(venue, kind, date, sources, figures, warnings))
            writer.close()
            k = figures["kinds"][kind]
            day.files.append(
                ExportedFile(
                    venue,
                    kind,
                    date,
                    final,
                    int(k["rows"]),
                    _pair(k["seq"]),
                    _pair(k["stream_seq"]),
                    tmp.stat().st_size,
                )
            )
        for _, tmp, final in writers.values():
            os.replace(tmp, final)
        writers.clear()
    finally:
        for writer, tmp, _ in writers.values():
            try:
                writer.close()
            finally:
                tmp.unlink(missing_ok=True)
    for kind in kinds:
        stale = _partition(out, venue, kind, date)
        if kind not in {f.kind for f in day.files} and stale.exists():
            stale.unlink()
            day.removed.append(stale)
    day.files.sort(key=lambda f: KINDS.index(f.kind))
    return day


# -- reconciliation -----------------------------------------------------------------------


@dataclass
class VerifyIssue:
    venue: str
    date: str
    kind: str
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.venue} {self.date} {self.kind}: {self.message} ({self.path})"


@dataclass
class VerifyResult:
    """What :func:`verify_parquet` checked and found."""

    files: list[ExportedFile] = field(default_factory=list)
    issues: list[VerifyIssue] = field(default_factory=list)
    warnings: list[ReadWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues and not self.warnings


def verify_parquet(
    root: PathArg,
    out: PathArg | None = None,
    *,
    venues: Iterable[str | Venue] | None = None,
    kinds: Iterable[str] | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    on_warning: OnWarning | None = None,
) -> VerifyResult:
    """Reconcile the Parquet export with its source, day by day and kind by kind.

    For each day the source is read again through the core; each kind must
    have a file exactly when the source gives it rows, with the same number
    of rows, the same first/last ``rx`` and venue ``seq``, the same stream
    sequence range, rows in ``rx`` order, and a footer naming the same
    source files at the same sizes.
    """
    pq = need_data("pyarrow.parquet", "Parquet verification")
    pc = need_data("pyarrow.compute", "Parquet verification")
    base = Path(root)
    target = parquet_dir(base, out)
    selected = _kinds(kinds)
    days = day_files(base, venues, date_from, date_to)
    if not days:
        raise ConfigError(f"no archive files in {base} for that range")
    report = warn if on_warning is None else on_warning
    result = VerifyResult()
    for venue, date, files in days:
        reader = ColumnReader(files, venue, kinds=selected, views=False)
        for _ in reader:
            pass
        figures = reader.figures()
        for w in reader.warnings:
            report(w)
            result.warnings.append(w)
        sources = _sources(base, files)
        for kind in selected:
            path = _partition(target, venue, kind, date)
            src = figures["kinds"].get(kind)
            issues = _check_file(pq, pc, path, src, sources)
            result.issues.extend(VerifyIssue(venue, date, kind, path, m) for m in issues)
            if path.exists():
                result.files.append(
                    ExportedFile(
                        venue,
                        kind,
                        date,
                        path,
                        int(src["rows"]) if src else 0,
                        _pair(src["seq"]) if src else None,
                        _pair(src["stream_seq"]) if src else None,
                        path.stat().st_size,
                    )
                )
    return result


def _first_last(col: Any) -> tuple[int, int] | None:
    values = col.drop_null()
    if not len(values):
        return None
    return int(values[0].as_py()), int(values[-1].as_py())


def _check_file(
    pq: Any, pc: Any, path: Path, src: dict[str, Any] | None, sources: list[dict[str, Any]]
) -> list[str]:
    rows = int(src["rows"]) if src else 0
    if not path.exists():
        return [f"missing: the source gives {rows} rows"] if rows else []
    if src is None:
        return ["the source gives no rows of this kind, yet the file exists"]
    try:
        pf = pq.ParquetFile(path)
        meta = pf.metadata.metadata or {}
        names = pf.schema_arrow.names
        table = pf.read(columns=[c for c in ("rx", "seq", "stream_seq") if c in names])
    except Exception as exc:  # pyarrow raises its own errors for a damaged file
        return [f"unreadable: {exc}"]
    issues = []
    footer = {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"ssmd.")}
    if footer.get("ssmd.schema_version") != COLUMNS_SCHEMA_VERSION:
        issues.append(
            f"schema version {footer.get('ssmd.schema_version')!r}, expected"
            f" {COLUMNS_SCHEMA_VERSION!r}"
        )
    if table.num_rows != rows:
        issues.append(f"rows: source {rows}, file {table.num_rows}")
    rx = table.column("rx").cast("int64")
    if (
        table.num_rows > 1
        and not pc.all(pc.greater_equal(rx.slice(1), rx.slice(0, table.num_rows - 1))).as_py()
    ):
        issues.append("rows are not in rx order")
    checks = [("rx", _first_last(rx), _pair(src["rx"]), "first/last rx")]
    if "seq" in names:
        checks.append(
            ("seq", _first_last(table.column("seq")), _pair(src["seq"]), "first/last seq")
        )
    ss = table.column("stream_seq").drop_null()
    file_ss = (int(pc.min(ss).as_py()), int(pc.max(ss).as_py())) if len(ss) else None
    checks.append(("stream_seq", file_ss, _pair(src["stream_seq"]), "stream seq range"))
    for _, got, want, what in checks:
        if got != want:
            issues.append(f"{what}: source {want}, file {got}")
    try:
        named = json.loads(footer.get("ssmd.source_files", "null"))
    except ValueError:
        named = None
    if not isinstance(named, list):
        issues.append("the footer names no source files")
    else:
        had = {(s.get("file"), s.get("bytes")) for s in named if isinstance(s, dict)}
        now = {(s["file"], s["bytes"]) for s in sources}
        if had != now:
            changed = sorted({f for f, _ in had ^ now if f is not None})
            issues.append(
                "stale: the source files changed since the export: " + ", ".join(changed[:5])
            )
    return issues
