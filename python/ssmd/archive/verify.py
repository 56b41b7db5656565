"""Check the archive against its manifests and the stream sequences (``ssmd archive verify``).

:func:`verify_archive` reads every file of the chosen venues and days once and
returns a :class:`VerifyResult`:

* **Files.** Each file is scanned by the Rust scanner
  (:func:`ssmd._core.scan_file`), which reads it exactly as the archive
  reader does: every gzip member (zstd frame) whose checksum passes, damage
  skipped to the next member, lines that are not envelope lines dropped. What
  was lost is an error with the members, bytes and lines dropped, the same
  figures the reader's warning gives; a name that is not a regular file (a
  FIFO, a directory) is an error, never opened. Each file named in
  ``{root}/{venue}/{date}/manifest.json`` (read by the Rust manifest reader)
  must exist and match its entry: sha256 and size of the compressed file;
  lines, uncompressed bytes, members, first/last ``rx``, first/last ``seq``
  and gap status lines of its content (these only when nothing was lost).
  Finished files (``*.jsonl.gz``, ``*.jsonl.zst``) that the manifest does
  not name are errors; ``.part`` files are open (being written, or left by a
  crash until a writer repairs them): notes, read up to their last complete
  member (a torn last member is expected of them).
* **Stream sequences.** Lines written by the archiver carry ``"seq":M`` or
  ``"seq":[M,i]`` (line ``i`` of bus message ``M``) after ``rx``. Per venue,
  the stream sequences of the checked days are ordered by value (not by
  file) and every range missing between the smallest and the largest is a
  gap: *recorded* when status lines ``{"ssmd":"gap","reason":"stream",
  "from":A,"to":B}`` cover it (a note), else *unrecorded* (an error). The
  same ``M`` (``[M,i]``) archived twice is a duplicate (an error). A file
  whose sequences all lie below those of the file before it (files in time
  order; not merely adjacent) is a stream reset: a note, and the sequences
  from there on are checked as a new run. Lines without ``seq`` (the
  connector's embedded archive) have no sequence check.

The scanner returns each file's sequences as runs of consecutive ``M`` per
segment (and, for a file out of stream order, its resets and duplicates);
this module compares them across files.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssmd._core import FileScan, scan_file
from ssmd.archive import archive_dir, parse_date, read_manifest
from ssmd.archive.verify_result import (
    DayCheck,
    FileCheck,
    Issue,
    Level,
    Mismatch,
    SeqDuplicate,
    SeqGap,
    SeqReset,
    VerifyProgress,
    VerifyResult,
)
from ssmd.errors import ConfigError, SinkError

if TYPE_CHECKING:
    import datetime as dt

__all__ = [
    "DayCheck",
    "FileCheck",
    "Issue",
    "Mismatch",
    "SeqDuplicate",
    "SeqGap",
    "SeqReset",
    "VerifyProgress",
    "VerifyResult",
    "verify_archive",
]

PathArg = str | os.PathLike[str]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXTS = {".jsonl.gz": "gzip", ".jsonl.zst": "zstd"}

# -- one file: the Rust scanner ---------------------------------------------------------


def _codec(name: str) -> tuple[str, bool] | None:
    """``(codec, is_part)`` of an archive file name, ``None`` for other files."""
    if name.startswith("."):
        return None
    part = name.endswith(".part")
    base = name[:-5] if part else name
    for ext, codec in _EXTS.items():
        if base.endswith(ext) and len(base) > len(ext):
            return codec, part
    return None


Key = tuple[int, int]  # (M, i), i = -1 for a plain "seq":M


@dataclass
class _Segment:
    """Sequences of one file (or of a part of it after a reset inside it)."""

    file: _FileScan
    runs: list[list[int]]  # disjoint [lo, hi] of distinct M, ascending
    first_m: int
    last_m: int
    first_idx: set[int]  # line indexes carried by first_m / last_m (-1: plain)
    last_idx: set[int]
    first_key: Key
    last_key: Key
    epoch: int = 0


@dataclass
class _FileScan:
    """What scanning one file found (:func:`ssmd._core.scan_file`): what the
    reader reads of it, with the same damage skipped."""

    venue: str
    date: str
    name: str
    scan: FileScan
    segments: list[_Segment] = field(default_factory=list)
    order: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.date}/{self.name}"

    @property
    def first_rx(self) -> int | None:
        return self.scan.first_rx

    @property
    def recorded(self) -> list[tuple[int, int]]:
        return self.scan.recorded

    @property
    def dup_ranges(self) -> list[tuple[int, int]]:
        return self.scan.duplicates


def _scan_file(venue: str, date: str, name: str, path: Path) -> _FileScan:
    f = _FileScan(venue, date, name, scan_file(path))
    f.segments = [
        _Segment(f, [list(r) for r in runs], fm, lm, set(fi), set(li), fk, lk)
        for runs, fm, lm, fi, li, fk, lk in f.scan.segments
    ]
    return f


# -- the manifest comparison --------------------------------------------------------------


def _seq_json(key: Key | None) -> Any:
    if key is None:
        return None
    return key[0] if key[1] < 0 else [key[0], key[1]]


def _norm_seq(value: Any) -> Any:
    if isinstance(value, list | tuple) and len(value) == 2:
        return [value[0], value[1]]
    return value


def _compare(entry: dict[str, Any], scan: _FileScan) -> list[Mismatch]:
    """Manifest fields that differ from what was read (content fields only
    when nothing was lost reading it)."""
    out: list[Mismatch] = []

    def check(name: str, actual: Any, *, norm: Any = None) -> None:
        if name not in entry:
            return
        expected = entry[name] if norm is None else norm(entry[name])
        if expected != actual:
            out.append(Mismatch(name, entry[name], actual))

    s = scan.scan
    check("bytes", s.size)
    check("sha256", s.sha256)
    check("codec", s.codec)
    if s.error is not None:
        return out
    check("lines", s.lines)
    check("raw_bytes", s.raw_bytes)
    check("members", s.members)
    check("first_rx", s.first_rx)
    check("last_rx", s.last_rx)
    check("first_seq", _seq_json(s.first_seq), norm=_norm_seq)
    check("last_seq", _seq_json(s.last_seq), norm=_norm_seq)
    check("gaps", [{"rx": rx, "subj": subj} for rx, subj in s.gaps], norm=_norm_gaps)
    return out


def _norm_gaps(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [{"rx": g.get("rx"), "subj": g.get("subj")} if isinstance(g, dict) else g for g in value]


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12] + "…"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return f"{len(value)} gap lines"
    return "none" if value is None else str(value)


def _mismatch_text(m: Mismatch) -> str:
    return f"{m.field}: manifest {_short(m.manifest)}, file {_short(m.actual)}"


# -- the walk ----------------------------------------------------------------------------


def _venues(root: Path, venue: str | None) -> list[str]:
    if venue is not None:
        if not (root / venue).is_dir():
            raise ConfigError(f"no venue {venue!r} in {root}")
        return [venue]
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _days(vdir: Path, first: dt.date | None, last: dt.date | None) -> list[str]:
    out = []
    for p in vdir.iterdir():
        if not (_DATE.fullmatch(p.name) and p.is_dir()):
            continue
        try:
            day = parse_date(p.name)
        except ConfigError:
            continue
        if (first is None or day >= first) and (last is None or day <= last):
            out.append(p.name)
    return sorted(out)


def _order(scan: _FileScan) -> tuple[Any, ...]:
    """Time order of files: date, window (HHMM), first rx, name."""
    rx = scan.first_rx if scan.first_rx is not None else 0
    return (scan.date, scan.name[:4], rx, scan.name)


class _Verifier:
    def __init__(self, root: Path, progress: VerifyProgress | None) -> None:
        self.root = root
        self.progress = progress
        self.result = VerifyResult(root=str(root))
        self.day_checks: dict[tuple[str, str], DayCheck] = {}
        self.seq_issues: list[tuple[int, Issue]] = []  # by the first sequence concerned

    def issue(self, level: Level, venue: str, date: str, file: str | None, message: str) -> None:
        self.result.issues.append(Issue(level, venue, date, file, message))

    def seq_issue(self, at: int, level: Level, venue: str, date: str, message: str) -> None:
        self.seq_issues.append((at, Issue(level, venue, date, None, message)))

    def venue(self, venue: str, days: list[str]) -> None:
        scans: list[_FileScan] = []
        for day in days:
            scans += self.day(venue, day)
        self.sequences(venue, scans)
        self.seq_issues.sort(key=itemgetter(0))
        self.result.issues += (i for _, i in self.seq_issues)
        self.seq_issues = []

    def entries(self, venue: str, day: str) -> tuple[dict[str, dict[str, Any]] | None, str | None]:
        """The manifest's entries by name (``None`` without a manifest), or why it is unusable."""
        if not (self.root / venue / day / "manifest.json").exists():
            return None, None
        try:
            manifest = read_manifest(self.root, venue, day)
        except SinkError as exc:
            return None, str(exc)
        files = manifest["files"]
        return {e["name"]: e for e in files if isinstance(e, dict) and "name" in e}, None

    def day(self, venue: str, day: str) -> list[_FileScan]:
        check = DayCheck(venue, day)
        self.day_checks[venue, day] = check
        self.result.days.append(check)
        ddir = self.root / venue / day
        # Every archive name, regular file or not: the scan reports what it
        # cannot read (a FIFO, a directory), as the reader does.
        on_disk = {p.name: c for p in ddir.iterdir() if (c := _codec(p.name))}
        entries, error = self.entries(venue, day)
        if entries is not None and any(n not in entries for n, c in on_disk.items() if not c[1]):
            entries, error = self.entries(venue, day)  # a writer may just have finished one
        if error is not None:
            check.manifest_error = error
            self.issue("error", venue, day, None, f"manifest: {error}")
        elif entries is None and any(not part for _, part in on_disk.values()):
            check.manifest_error = "no manifest.json"
            self.issue("error", venue, day, None, "no manifest.json next to finished files")
        entries = entries or {}
        task = None if self.progress is None else self.progress.add(f"{venue} {day}")
        progress = self.progress

        def tick(n: int) -> None:
            if progress is not None and task is not None:
                progress.advance(task, n)

        scans = []
        for name in sorted(set(entries) | set(on_disk)):
            path = ddir / name
            if _codec(name) is None or not (path.exists() or path.is_symlink()):
                self.count(check, self.missing(venue, day, name))
                continue
            scan = _scan_file(venue, day, name, path)
            s = scan.scan
            if s.gone and s.part:  # finished by its writer meanwhile
                continue
            if s.gone:
                self.count(check, self.missing(venue, day, name))
                continue
            tick(s.lines)
            fc = FileCheck(
                venue,
                day,
                name,
                "ok",
                s.lines,
                error=s.error if s.skipped is None else s.skipped,
                members_dropped=s.members_dropped,
                bytes_dropped=s.bytes_dropped,
                lines_dropped=s.lines_dropped,
            )
            if s.skipped is None:
                scans.append(scan)
            self.file(fc, scan, entries.get(name))
            self.count(check, fc)
            check.lines += s.lines
        if progress is not None and task is not None:
            progress.done(task)
        return scans

    def missing(self, venue: str, day: str, name: str) -> FileCheck:
        self.issue("error", venue, day, name, "missing: listed in the manifest, not on disk")
        return FileCheck(venue, day, name, "missing")

    def count(self, check: DayCheck, fc: FileCheck) -> None:
        self.result.files.append(fc)
        check.files += 1
        if fc.status == "ok":
            check.files_ok += 1
        elif fc.status == "open":
            check.files_open += 1
        else:
            check.files_bad += 1

    def file(self, fc: FileCheck, scan: _FileScan, entry: dict[str, Any] | None) -> None:
        venue, day, name = fc.venue, fc.date, fc.name
        s = scan.scan
        if s.skipped is not None:
            fc.status = "bad"
            self.issue("error", venue, day, name, f"unreadable: {s.skipped}")
            return
        if s.part:
            fc.status = "open"
            torn = f", and a torn last member of {_n(s.torn_tail, 'byte')}" if s.torn_tail else ""
            self.issue(
                "note",
                venue,
                day,
                name,
                f"open (being written or needs repair): {_n(s.lines, 'line')} so far{torn}",
            )
        elif entry is None:
            fc.status = "unlisted"
            self.issue("error", venue, day, name, f"not in the manifest ({_n(s.lines, 'line')})")
        else:
            fc.mismatches = _compare(entry, scan)
            if fc.mismatches:
                fc.status = "bad"
                for m in fc.mismatches:
                    self.issue("error", venue, day, name, _mismatch_text(m))
        if s.error is not None:
            # What the reader skips with a warning, counted the same way.
            if fc.status in ("ok", "open"):
                fc.status = "bad"
            self.issue("error", venue, day, name, f"corrupt: {s.error}{_dropped(fc)}")

    # -- stream sequences --------------------------------------------------------------

    def sequences(self, venue: str, scans: list[_FileScan]) -> None:
        scans.sort(key=_order)
        for k, scan in enumerate(scans):
            scan.order = (k,)
        segments = [s for scan in scans for s in scan.segments]
        if not segments:
            return
        # Epochs: a segment entirely below the one before it, not adjacent to it,
        # starts a new one (mere disorder, or the files of several writers of
        # one window, overlap or touch).
        epoch = 0
        prev: _Segment | None = None
        for seg in segments:
            if prev is not None and seg.last_m + 1 < prev.first_m:
                epoch += 1
                reset = SeqReset(
                    venue,
                    seg.file.date,
                    seg.file.label,
                    prev.file.label,
                    (prev.first_m, prev.last_m),
                    (seg.first_m, seg.last_m),
                )
                self.result.resets.append(reset)
                self.issue(
                    "note",
                    venue,
                    seg.file.date,
                    seg.file.name,
                    f"stream sequence went back from {prev.first_m}-{prev.last_m}"
                    f" ({prev.file.label}) to {seg.first_m}-{seg.last_m}: stream reset;"
                    " sequences from here on are checked separately",
                )
            seg.epoch = epoch
            prev = seg
        recorded: list[list[tuple[int, int]]] = [[] for _ in range(epoch + 1)]
        current = 0
        for scan in scans:
            epochs = {s.epoch for s in scan.segments} or {current}
            for e in epochs:
                recorded[e] += scan.recorded
            current = max(epochs)
        for scan in scans:
            for lo, hi in scan.dup_ranges:
                self.duplicate(venue, lo, hi, scan, scan)
        for e in range(epoch + 1):
            self.sweep(venue, [s for s in segments if s.epoch == e], _merge(recorded[e]))

    def sweep(self, venue: str, segments: list[_Segment], recorded: list[list[int]]) -> None:
        """Walk the runs of one epoch in M order: holes are gaps, overlaps duplicates."""
        items = sorted(
            ((lo, hi, seg) for seg in segments for lo, hi in seg.runs), key=itemgetter(0, 1)
        )
        cur_hi: int | None = None
        owner: _Segment | None = None
        dups: list[tuple[int, int, _FileScan, _FileScan]] = []
        for lo, hi, seg in items:
            if cur_hi is not None and owner is not None:
                if lo > cur_hi + 1:
                    self.gap(venue, cur_hi + 1, lo - 1, owner.file, seg.file, recorded)
                elif lo <= cur_hi:
                    a, b = lo, min(hi, cur_hi)
                    if _shared_batch(a, owner, seg):
                        a += 1
                    if b >= a and _shared_batch(b, owner, seg):
                        b -= 1
                    if a <= b:
                        first, second = sorted((owner.file, seg.file), key=lambda s: s.order)
                        dups.append((a, b, first, second))
            if cur_hi is None or hi > cur_hi:
                cur_hi, owner = hi, seg
        # Merge adjacent ranges of the same pair of files.
        dups.sort(key=lambda d: (d[2].order, d[3].order, d[0]))
        merged: list[list[Any]] = []
        for a, b, f1, f2 in dups:
            if merged and merged[-1][2] is f1 and merged[-1][3] is f2 and a <= merged[-1][1] + 1:
                merged[-1][1] = max(b, merged[-1][1])
            else:
                merged.append([a, b, f1, f2])
        for a, b, f1, f2 in merged:
            self.duplicate(venue, a, b, f1, f2)

    def gap(
        self,
        venue: str,
        first: int,
        last: int,
        after: _FileScan,
        before: _FileScan,
        recorded: list[list[int]],
    ) -> None:
        for lo, hi, rec in _split(first, last, recorded):
            gap = SeqGap(venue, before.date, lo, hi, rec, after.label, before.label)
            self.result.gaps.append(gap)
            check = self.day_checks[venue, before.date]
            n = hi - lo + 1
            where = f"between {after.label} and {before.label}"
            text = f"stream seq {_span(lo, hi)} missing ({n}),"
            if rec:
                check.gaps_recorded += n
                text += f" recorded as a stream gap ({where})"
            else:
                check.gaps_unrecorded += n
                text += f" not recorded ({where})"
            self.seq_issue(lo, "note" if rec else "error", venue, before.date, text)

    def duplicate(self, venue: str, lo: int, hi: int, f1: _FileScan, f2: _FileScan) -> None:
        files = (f1.label,) if f1 is f2 else (f1.label, f2.label)
        later = f2
        self.result.duplicates.append(SeqDuplicate(venue, later.date, lo, hi, files))
        self.day_checks[venue, later.date].duplicates += hi - lo + 1
        where = f"twice in {f1.label}" if f1 is f2 else f"in {f1.label} and {f2.label}"
        text = f"stream seq {_span(lo, hi)} archived twice ({hi - lo + 1}): {where}"
        self.seq_issue(lo, "error", venue, later.date, text)


def _dropped(fc: FileCheck) -> str:
    parts = [
        _n(n, word)
        for n, word in (
            (fc.members_dropped, "member"),
            (fc.bytes_dropped, "byte"),
            (fc.lines_dropped, "line"),
        )
        if n
    ]
    return f" (dropped {', '.join(parts)})" if parts else ""


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _shared_batch(m: int, s1: _Segment, s2: _Segment) -> bool:
    """Whether ``m`` is a bus message whose lines the two segments share
    without overlap (a multi-line message split across a file boundary)."""
    i1 = s1.first_idx if m == s1.first_m else s1.last_idx if m == s1.last_m else None
    i2 = s2.first_idx if m == s2.first_m else s2.last_idx if m == s2.last_m else None
    if i1 is None or i2 is None or -1 in i1 or -1 in i2:
        return False
    return not i1 & i2


def _merge(ranges: list[tuple[int, int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


def _split(first: int, last: int, recorded: list[list[int]]) -> list[tuple[int, int, bool]]:
    """``first..last`` cut into pieces covered (True) or not by ``recorded``."""
    out: list[tuple[int, int, bool]] = []
    at = first
    for lo, hi in recorded:  # sorted, disjoint
        if hi < at:
            continue
        if lo > last:
            break
        if lo > at:
            out.append((at, lo - 1, False))
        out.append((max(lo, at), min(hi, last), True))
        at = hi + 1
        if at > last:
            return out
    out.append((at, last, False))
    return out


def verify_archive(
    root: PathArg | None = None,
    venue: str | None = None,
    date_from: str | dt.date | None = None,
    date_to: str | dt.date | None = None,
    *,
    progress: VerifyProgress | None = None,
) -> VerifyResult:
    """Check the files of ``root`` (venue ``venue`` or all, days ``date_from..=date_to``)
    against their manifests and the stream sequences they carry.

    Raises :class:`~ssmd.errors.ConfigError` for a missing directory or venue
    or a bad date; everything the archive itself gets wrong is in the result.
    """
    started = time.perf_counter()
    base = archive_dir(root)
    if not base.is_dir():
        raise ConfigError(f"archive directory not found: {base}")
    first = None if date_from is None else parse_date(date_from)
    last = None if date_to is None else parse_date(date_to)
    if first is not None and last is not None and last < first:
        raise ConfigError(f"--to {last} is before --from {first}")
    v = _Verifier(base, progress)
    for name in _venues(base, venue):
        days = _days(base / name, first, last)
        if days:
            v.venue(name, days)
    # Group the report by day (files first, then sequences, as found).
    v.result.issues.sort(key=lambda i: (i.venue, i.date))
    v.result.seconds = time.perf_counter() - started
    return v.result
