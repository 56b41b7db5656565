"""``ssmd backtest run``: a signal over the archive, through the live runner's engine.

The archive's files of the chosen venues and days are merged in receive-time
order across venues by the Rust reader (damage skipped and reported, open
``.part`` files read), only the subject kinds the signal's builders read
(and ``status``, for the gaps) are handed over, and the chunks go through
:class:`~ssmd.signals.engine.SignalRun`, which keeps its state across
chunks: the fires do not depend on the chunk size. Archives of the original
ssmd (docs/archive.md) are read through the core first, in the same order.

A run writes ``{runs dir}/{run id}/``: ``fires.jsonl`` (one fire body per
line, as published live), ``fires.csv`` and ``summary.json`` (see
:func:`summary`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import heapq
import io
import json
import os
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from ssmd.archive import (
    ArchiveReader,
    ReadWarning,
    chunks,
    is_legacy_layout,
    iter_legacy_lines,
    list_files,
    read_manifest,
    reported,
)
from ssmd.errors import ConfigError
from ssmd.signals.discover import SignalSource
from ssmd.signals.engine import Fire, SignalRun

__all__ = [
    "Backtest",
    "BacktestResult",
    "archive_fingerprint",
    "list_runs",
    "load_run",
    "run_backtest",
    "write_report",
]

#: lines handed to the engine per call
DEFAULT_CHUNK_LINES = 8192


@dataclass
class Backtest:
    """What to replay."""

    source: SignalSource
    params: dict[str, Any] = field(default_factory=dict)
    root: Path = Path("./data")
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    #: receive-time bounds in ns (``rx_from <= rx < rx_to``), finer than the dates
    rx_from: int | None = None
    rx_to: int | None = None
    venues: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    #: call the signal's Python ``evaluate`` even when it has a rule
    python: bool = False
    chunk_lines: int = DEFAULT_CHUNK_LINES
    legacy: bool | None = None


@dataclass
class BacktestResult:
    """What a run gave."""

    backtest: Backtest
    fires: list[Fire]
    counters: dict[str, int]
    instruments: list[tuple[str, str, int, int, int]]
    gaps: list[tuple[int, str | None, str, str]]
    warnings: list[str]
    files: list[str]
    native: bool
    seconds: float
    cpu_seconds: float
    startup_seconds: float
    errors: dict[str, str]


def _venue_files(bt: Backtest) -> list[str]:
    d0 = bt.date_from.isoformat() if bt.date_from else None
    d1 = bt.date_to.isoformat() if bt.date_to else None
    venues: Sequence[str | None] = bt.venues or [None]
    out: list[str] = []
    for v in venues:
        out += list_files(str(bt.root), v, d0, d1, include_parts=True)
    return sorted(set(out))


def _no_files(bt: Backtest) -> ConfigError:
    what = ", ".join(bt.venues) if bt.venues else "any venue"
    span = f"{bt.date_from or 'the start'} to {bt.date_to or 'the end'}"
    return ConfigError(f"no archive files for {what} from {span} in {bt.root}")


def _ssmd_reader(bt: Backtest, files: list[str], kinds: list[str]) -> ArchiveReader:
    return ArchiveReader(
        files,
        kinds=[*kinds, "status"],
        rx_from=bt.rx_from,
        rx_to=bt.rx_to,
        chunk_lines=bt.chunk_lines,
    )


def _via_bytes(
    run: SignalRun, source: Iterable[bytes], on_chunk: Callable[[bytes], None] | None
) -> Iterator[list[Fire]]:
    """The fires of each chunk of ``source``, the chunk shown to ``on_chunk`` first."""
    for chunk in source:
        if on_chunk is not None:
            on_chunk(chunk)
        yield run.process(chunk)


def _legacy_chunks(
    bt: Backtest, kinds: list[str], on_warning: Callable[[ReadWarning], None]
) -> Iterator[bytes]:
    venues: Sequence[str | None] = bt.venues or [None]
    sources = [  # one reader per venue named, merged by rx below
        iter_legacy_lines(
            str(bt.root),
            v,
            bt.date_from,
            bt.date_to,
            [*kinds, "status"],
            rx_from=bt.rx_from,
            rx_to=bt.rx_to,
            on_warning=on_warning,
        )
        for v in venues
    ]

    def rx(line: bytes) -> int:
        return int(line[6 : line.index(b",", 6)])

    merged = heapq.merge(*sources, key=rx) if len(sources) > 1 else sources[0]
    buf: list[bytes] = []
    for line in merged:
        buf.append(line)
        if len(buf) >= bt.chunk_lines:
            yield b"\n".join(buf) + b"\n"
            buf = []
    if buf:
        yield b"\n".join(buf) + b"\n"


def run_backtest(
    bt: Backtest,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    on_warning: Callable[[ReadWarning], None] | None = None,
    on_chunk: Callable[[bytes], None] | None = None,
) -> BacktestResult:
    """Replay the archive through the signal. ``progress(records, last_rx)`` is called
    after each chunk; ``on_chunk`` sees every chunk (``--plot`` traces)."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    root = Path(bt.root)
    if not root.is_dir():
        raise ConfigError(f"archive directory not found: {root}")
    signal = bt.source.make(bt.params)
    run = SignalRun(
        signal, venues=bt.venues or None, instruments=bt.instruments or None, python=bt.python
    )
    kinds = run.subject_kinds()
    warnings: list[str] = []

    def warned(w: ReadWarning) -> None:
        warnings.append(str(w))
        if on_warning is not None:
            on_warning(w)

    legacy = bt.legacy if bt.legacy is not None else is_legacy_layout(root)
    if legacy:
        from ssmd.archive import find_legacy_files

        wanted: Sequence[str | None] = bt.venues or [None]
        files = [
            str(f.path)
            for v in wanted
            for f in find_legacy_files(str(root), v, bt.date_from, bt.date_to)
        ]
        if not files:
            raise _no_files(bt)
        batches = _via_bytes(run, _legacy_chunks(bt, kinds, warned), on_chunk)
    else:
        files = _venue_files(bt)
        if not files:
            raise _no_files(bt)
        reader = _ssmd_reader(bt, files, kinds)
        if on_chunk is None:
            # the common case: each chunk goes from the reader to the engine in Rust,
            # never copied into a Python ``bytes``
            batches = reported(reader, iter(partial(run.process_next, reader), None), warned)
        else:  # --plot draws from the chunks
            batches = _via_bytes(run, chunks(reader, warned), on_chunk)
    startup = time.perf_counter() - t0
    fires: list[Fire] = []
    for got in batches:
        fires += got
        if progress is not None:
            progress(run.counters()["records"], run.engine.last_rx)
    seconds = time.perf_counter() - t0
    errors = {f"{v}:{i}": m for (v, i), m in run.first_error.items()}
    return BacktestResult(
        backtest=bt,
        fires=fires,
        counters=run.counters(),
        instruments=run.engine.instruments(),
        gaps=run.engine.gaps(),
        warnings=warnings,
        files=files,
        native=run.native,
        seconds=seconds,
        cpu_seconds=time.process_time() - c0,
        startup_seconds=startup,
        errors=errors,
    )


# -- the report -----------------------------------------------------------------------


def archive_fingerprint(root: Path, files: Sequence[str]) -> str:
    """sha256 over each file's path (relative to the root), size and content hash: the
    manifest's sha256 when the day has a manifest entry, else the file's modification
    time (``.part`` files and archives without a manifest)."""
    h = hashlib.sha256()
    manifests: dict[Path, dict[str, Any]] = {}
    for f in sorted(files):
        p = Path(f)
        try:
            rel = str(p.relative_to(root))
        except ValueError:
            rel = str(p)
        try:
            st = p.stat()
        except OSError:
            continue
        day = p.parent
        if day not in manifests:
            try:
                m = read_manifest(root, day.parent.name, day.name)
            except Exception:
                m = {"files": []}
            manifests[day] = {e["name"]: e for e in m.get("files", []) if "name" in e}
        entry = manifests[day].get(p.name)
        ident = entry["sha256"] if entry and entry.get("sha256") else f"mtime:{st.st_mtime_ns}"
        h.update(f"{rel}\0{st.st_size}\0{ident}\n".encode())
    return h.hexdigest()


def _git(path: str | None) -> dict[str, Any] | None:
    """``{"revision", "dirty"}`` of the repository holding ``path``, if any."""
    if not path:
        return None
    d = Path(path).parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(d), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if rev.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(d), "status", "--porcelain", "--", path],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"revision": rev.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _day(rx: int) -> str:
    return dt.datetime.fromtimestamp(rx / 1e9, dt.timezone.utc).date().isoformat()


def _iso(rx: int) -> str:
    t = dt.datetime.fromtimestamp(rx // 1_000_000_000, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{rx % 1_000_000_000:09d}Z"


def summary(result: BacktestResult, run_id: str) -> dict[str, Any]:
    """The run's ``summary.json``."""
    bt = result.backtest
    src = bt.source
    per_inst: Counter[str] = Counter()
    per_day: Counter[str] = Counter()
    for f in result.fires:
        per_inst[f"{f.venue}:{f.instrument}"] += 1
        per_day[_day(f.rx)] += 1
    c = result.counters
    return {
        "run_id": run_id,
        "signal": {
            "id": src.id,
            "name": src.name,
            "origin": src.origin,
            "path": src.path,
            "git": _git(src.path),
            "params": src.make(bt.params).param_values,
            "evaluated_in": "rust" if result.native else "python",
        },
        "archive": {
            "root": str(Path(bt.root).resolve()),
            "files": len(result.files),
            "bytes": sum(os.path.getsize(f) for f in result.files if os.path.exists(f)),
            "fingerprint": archive_fingerprint(Path(bt.root), result.files),
            "warnings": result.warnings,
        },
        "range": {
            "from": bt.date_from.isoformat() if bt.date_from else None,
            "to": bt.date_to.isoformat() if bt.date_to else None,
            "rx_from": bt.rx_from,
            "rx_to": bt.rx_to,
        },
        "venues": bt.venues,
        "instruments": bt.instruments,
        "records": c["records"],
        "lines": c["lines"],
        "counters": c,
        "instruments_seen": len(result.instruments),
        "fires": len(result.fires),
        "fires_per_instrument": dict(sorted(per_inst.items())),
        "fires_per_day": dict(sorted(per_day.items())),
        "gaps": {
            "count": c["gaps"],
            "lines": [
                {"rx": rx, "venue": v, "subject": s, "detail": _json_or_text(d)}
                for rx, v, s, d in result.gaps[:1000]
            ],
        },
        "errors": result.errors,
        "seconds": round(result.seconds, 3),
        "startup_seconds": round(result.startup_seconds, 3),
        "cpu_seconds": round(result.cpu_seconds, 3),
        "records_per_cpu_second": round(c["records"] / result.cpu_seconds)
        if result.cpu_seconds > 0
        else None,
        "lines_per_cpu_second": round(c["lines"] / result.cpu_seconds)
        if result.cpu_seconds > 0
        else None,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _json_or_text(d: str) -> Any:
    try:
        return json.loads(d)
    except ValueError:
        return d


CSV_COLUMNS = (
    "signal",
    "venue",
    "instrument",
    "ts",
    "rx",
    "rx_time",
    "source_seq",
    "msg_id",
    "subject",
    "payload",
)


def write_report(result: BacktestResult, runs_dir: Path, run_id: str | None = None) -> Path:
    """Write ``fires.jsonl``, ``fires.csv`` and ``summary.json``; the run's directory."""
    src = result.backtest.source
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_id = run_id or f"{stamp}-{src.id}-{secrets.token_hex(3)}"
    out = runs_dir / run_id
    try:
        out.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise ConfigError(f"run directory exists already: {out}") from None
    except OSError as exc:
        raise ConfigError(f"cannot create the run directory {out}: {exc.strerror}") from None
    with open(out / "fires.jsonl", "wb") as f:
        for fire in result.fires:
            f.write(fire.body() + b"\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for fire in result.fires:
        seq = fire.source_seq
        w.writerow(
            (
                fire.signal,
                fire.venue,
                fire.instrument,
                "" if fire.ts is None else fire.ts,
                fire.rx,
                _iso(fire.rx),
                "" if seq is None else (f"{seq[0]}:{seq[1]}" if isinstance(seq, tuple) else seq),
                fire.msg_id,
                fire.subject,
                orjson.dumps(fire.payload).decode(),
            )
        )
    (out / "fires.csv").write_text(buf.getvalue(), encoding="utf-8")
    doc = summary(result, run_id)
    (out / "summary.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return out


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Summaries of the runs under ``runs_dir``, oldest first (unreadable ones skipped)."""
    if not runs_dir.is_dir():
        return []
    out = []
    for d in sorted(runs_dir.iterdir()):
        f = d / "summary.json"
        if f.is_file():
            try:
                out.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
    return out


def load_run(runs_dir: Path, run: str) -> tuple[Path, dict[str, Any]]:
    """The run named ``run`` (or the one run whose id starts with it)."""
    if not runs_dir.is_dir():
        raise ConfigError(f"no runs directory {runs_dir}")
    exact = runs_dir / run
    if (exact / "summary.json").is_file():
        candidates = [exact]
    else:
        candidates = [
            d
            for d in sorted(runs_dir.iterdir())
            if d.name.startswith(run) and (d / "summary.json").is_file()
        ]
    if not candidates:
        raise ConfigError(f"no run {run!r} in {runs_dir} (see ssmd backtest list)")
    if len(candidates) > 1:
        names = ", ".join(d.name for d in candidates[:5])
        raise ConfigError(f"run {run!r} is ambiguous in {runs_dir}: {names}")
    d = candidates[0]
    try:
        return d, json.loads((d / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{d / 'summary.json'}: unreadable ({exc})") from None
