"""Check the archive against its manifests and the stream sequences (``ssmd archive verify``).

:func:`verify_archive` reads every file of the chosen venues and days once and
returns a :class:`VerifyResult`:

* **Files.** Each file named in ``{root}/{venue}/{date}/manifest.json`` must
  exist and match its entry: sha256 and size of the compressed file; lines,
  uncompressed bytes, members (gzip members, zstd frames), first/last ``rx``,
  first/last ``seq`` and gap status lines of its content. It must decompress
  member by member and every line must start with ``{"rx":<int>``. Finished
  files (``*.jsonl.gz``, ``*.jsonl.zst``) that the manifest does not name are
  errors; ``.part`` files are open (being written, or left by a crash until a
  writer repairs them): notes, read up to their last complete member.
* **Stream sequences.** Lines written by the archiver carry ``"seq":M`` or
  ``"seq":[M,i]`` (line ``i`` of bus message ``M``) after ``rx``. Per venue,
  the stream sequences of the checked days are ordered by value (not by
  file) and every range missing between the smallest and the largest is a
  gap: *recorded* when status lines ``{"ssmd":"gap","reason":"stream",
  "from":A,"to":B}`` cover it (a note), else *unrecorded* (an error). The
  same ``M`` (``[M,i]``) archived twice is a duplicate (an error). A file
  whose sequences all lie below those of the file before it (files in time
  order; not merely adjacent) is a stream reset: a note, and the sequences
  from there on are checked as a new run. Lines without ``seq`` (the connector's embedded
  archive) have no sequence check.

The hot loop does no per-line Python work: a regex over each decompressed
block collects the ``rx``/``seq`` prefixes, orjson parses them in one call,
and order, gaps and duplicates are found with C-level ``map``/``zip``
passes. Only status lines (``.json.status`` in the block) are parsed as
JSON. A file whose sequences are not strictly increasing is read a second
time to locate its duplicates.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import accumulate, compress, islice, repeat
from operator import itemgetter, lt, sub
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
import zstandard

from ssmd.archive import archive_dir, parse_date, read_manifest
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
_BLOCK = 256 << 10  # compressed bytes read at a time

# The envelope prefix of a line (DESIGN §4): group 1 is `N`, `N,"seq":M` or
# `N,"seq":[M,i]`. _HEADS matches every newline and the prefix of the line
# after it, so one pass both counts the lines and finds the ones without a
# valid prefix (an empty group).
_INT = rb"(?:0|[1-9][0-9]*)"
_HEAD_BODY = (
    rb'\{"rx":(' + _INT + rb'(?:,"seq":(?:' + _INT + rb"|\[" + _INT + b"," + _INT + rb"\]))?)[,}]"
)
_HEADS = re.compile(rb"\n(?:" + _HEAD_BODY + rb")?")
_HEAD = re.compile(_HEAD_BODY)
_SEQ_KEY = b',"seq":'
_STATUS = b".json.status"  # the subject of a status line (with or without an instrument)
_GAP = b'"ssmd":"gap"'

Level = Literal["error", "note"]
FileStatus = Literal["ok", "bad", "missing", "unlisted", "open"]


class VerifyProgress(Protocol):
    """Where the check reports lines as it reads them (``ssmd.secmaster.sync.base.make_progress``)."""

    def add(self, description: str) -> int: ...

    def advance(self, task: int, n: int) -> None: ...

    def done(self, task: int) -> None: ...


# -- the result ------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """A manifest field that differs from what the file holds."""

    field: str
    manifest: Any
    actual: Any


@dataclass
class FileCheck:
    """One archive file: listed in a manifest, on disk, or both."""

    venue: str
    date: str
    name: str
    status: FileStatus
    #: lines read (up to a decoding error); ``None`` when the file is missing
    lines: int | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    #: why decoding stopped early (a bad member, a line without ``rx``, …)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "open")


@dataclass(frozen=True)
class SeqGap:
    """Stream sequences ``first..last`` (inclusive) that no line carries."""

    venue: str
    date: str
    first: int
    last: int
    recorded: bool
    #: files holding the sequences just before and just after the gap
    after_file: str
    before_file: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class SeqDuplicate:
    """Stream sequences ``first..last`` archived twice (in one file or two)."""

    venue: str
    date: str
    first: int
    last: int
    files: tuple[str, ...]

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class SeqReset:
    """The stream sequence went back between two files (time order): a reset stream."""

    venue: str
    date: str
    file: str
    previous_file: str
    #: the range of the file before and of the file that went back
    previous: tuple[int, int]
    current: tuple[int, int]


@dataclass(frozen=True)
class Issue:
    """One line of the report: an error (exit 1) or a note."""

    level: Level
    venue: str
    date: str
    file: str | None
    message: str


@dataclass
class DayCheck:
    """Figures of one venue and day."""

    venue: str
    date: str
    files: int = 0
    files_ok: int = 0
    files_bad: int = 0
    files_open: int = 0
    lines: int = 0
    #: stream sequences missing, recorded as gaps / not recorded
    gaps_recorded: int = 0
    gaps_unrecorded: int = 0
    #: stream sequences archived twice
    duplicates: int = 0
    manifest_error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.files_bad == 0
            and self.gaps_unrecorded == 0
            and self.duplicates == 0
            and self.manifest_error is None
        )


@dataclass
class VerifyResult:
    """What :func:`verify_archive` found."""

    root: str
    days: list[DayCheck] = field(default_factory=list)
    files: list[FileCheck] = field(default_factory=list)
    gaps: list[SeqGap] = field(default_factory=list)
    duplicates: list[SeqDuplicate] = field(default_factory=list)
    resets: list[SeqReset] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No mismatch, bad or unlisted file, unrecorded gap or duplicate."""
        return not any(i.level == "error" for i in self.issues)

    @property
    def lines(self) -> int:
        return sum(d.lines for d in self.days)

    @property
    def errors(self) -> int:
        return sum(i.level == "error" for i in self.issues)

    @property
    def notes(self) -> int:
        return sum(i.level == "note" for i in self.issues)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``ssmd archive verify --json``); ``files`` lists only
        the files that are not ``ok``, sequence ranges are ``from``/``to``/``count``."""

        def seq_range(x: SeqGap | SeqDuplicate) -> dict[str, Any]:
            d = asdict(x)
            head = {"venue": d.pop("venue"), "date": d.pop("date")}
            return head | {"from": d.pop("first"), "to": d.pop("last"), "count": x.count} | d

        return {
            "ok": self.ok,
            "root": self.root,
            "days": [asdict(d) | {"ok": d.ok} for d in self.days],
            "files": [asdict(f) for f in self.files if f.status != "ok"],
            "gaps": [seq_range(g) for g in self.gaps],
            "duplicates": [seq_range(d) for d in self.duplicates],
            "resets": [asdict(r) for r in self.resets],
            "issues": [asdict(i) for i in self.issues],
            "summary": {
                "venues": len({d.venue for d in self.days}),
                "days": len(self.days),
                "files": len(self.files),
                "files_bad": sum(not f.ok for f in self.files),
                "files_open": sum(f.status == "open" for f in self.files),
                "lines": self.lines,
                "errors": self.errors,
                "notes": self.notes,
                "seconds": round(self.seconds, 3),
            },
        }


# -- decoding ---------------------------------------------------------------------------


class _Corrupt(Exception):
    """Decoding stopped: a bad or truncated member."""


class _Unreadable(Exception):
    """The file could not be opened or read (the ``OSError`` is the argument)."""


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


class _Decoder:
    """Streams one file: sha256 and size of the compressed bytes, decompressed blocks."""

    def __init__(self, path: Path, codec: str) -> None:
        self.path = path
        self.codec = codec
        self.sha = hashlib.sha256()
        self.size = 0
        self.members = 0
        self._zstd = zstandard.ZstdDecompressor() if codec == "zstd" else None

    def _new(self) -> Any:
        if self._zstd is not None:
            return self._zstd.decompressobj()
        return zlib.decompressobj(wbits=31)

    def blocks(self) -> Iterator[bytes]:
        """Decompressed data in file order; raises :class:`_Corrupt` at a bad member.

        Every member (frame) is decoded by its own decompressor, so members are
        counted, a torn or damaged one is located by its offset, and the data of
        a member is handed out only once its checksum has passed.
        """
        d = self._new()
        started = False  # the current member has received input
        member_at = 0  # compressed offset where the current member starts
        pending: list[bytes] = []  # output of the current member, held until it checks out
        try:
            f = self.path.open("rb")
        except OSError as exc:
            raise _Unreadable(exc) from None
        with f:
            while True:
                try:
                    block = f.read(_BLOCK)
                except OSError as exc:
                    raise _Unreadable(exc) from None
                if not block:
                    break
                self.sha.update(block)
                offset = self.size
                self.size += len(block)
                while block:
                    started = True
                    try:
                        out = d.decompress(block)
                    except (zlib.error, zstandard.ZstdError) as exc:
                        raise _Corrupt(f"bad {self._unit()} at offset {member_at}: {exc}") from None
                    if out:
                        pending.append(out)
                    if not d.eof:
                        break
                    yield from pending
                    pending = []
                    rest = d.unused_data
                    self.members += 1
                    member_at = offset + len(block) - len(rest)
                    offset = member_at
                    block = rest
                    d = self._new()
                    started = False
        if started:
            raise _Corrupt(f"truncated {self._unit()} at offset {member_at}")

    def _unit(self) -> str:
        return "zstd frame" if self.codec == "zstd" else "gzip member"

    def drain(self) -> None:
        """Hash the rest of the file after a decoding error (for sha256 and size)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.size)
                while block := f.read(1 << 20):
                    self.sha.update(block)
                    self.size += len(block)
        except OSError:
            pass  # the decoding error is reported; sha256 and size then differ too


# -- stream sequences of one file --------------------------------------------------------

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


class _Seqs:
    """Collects a file's ``seq`` values.

    Fast mode (the normal case: the archiver writes in stream order) keeps
    only runs of consecutive ``M`` and stops with ``failed`` at the first key
    that is not larger than the one before it; collect mode keeps every key
    for :meth:`segments` to sort out resets and duplicates.
    """

    def __init__(self, file: _FileScan, collect: bool) -> None:
        self.file = file
        self.collect = collect
        self.failed = False
        self.seg: _Segment | None = None
        self.ms: list[int] = []
        self.idx: list[int] = []

    def add(self, ms: list[int], idx: list[int] | None) -> None:
        if self.collect:
            self.ms += ms
            self.idx += repeat(-1, len(ms)) if idx is None else idx
            return
        if self.failed:
            return
        n = len(ms)
        if idx is None:
            increasing = all(map(lt, ms, islice(ms, 1, None)))
            first_key: Key = (ms[0], -1)
            last_key: Key = (ms[-1], -1)
        else:
            keys = list(zip(ms, idx, strict=True))
            increasing = all(map(lt, keys, islice(keys, 1, None)))
            first_key, last_key = keys[0], keys[-1]
        seg = self.seg
        if not increasing or (seg is not None and first_key <= seg.last_key):
            self.failed = True
            return
        if idx is None and ms[-1] - ms[0] == n - 1:
            breaks: list[int] = []
        else:  # a run ends where M grows by more than one
            diffs = map(sub, islice(ms, 1, None), ms)
            breaks = list(compress(range(1, n), map(lt, repeat(1), diffs)))
        starts = [0, *breaks]
        ends = [*breaks, n]
        runs = [[ms[a], ms[b - 1]] for a, b in zip(starts, ends, strict=True)]
        first_m, last_m = ms[0], ms[-1]
        if idx is None:
            head, tail = {-1}, {-1}
        else:
            head = set(idx[: bisect_right(ms, first_m)])
            tail = set(idx[bisect_left(ms, last_m) :])
        if seg is None:
            self.seg = _Segment(self.file, runs, first_m, last_m, head, tail, first_key, last_key)
            return
        if runs[0][0] <= seg.runs[-1][1] + 1:
            seg.runs[-1][1] = runs[0][1]
            del runs[0]
        seg.runs += runs
        if first_m == seg.first_m == seg.last_m:
            seg.first_idx |= head
        seg.last_idx = seg.last_idx | tail if first_m == last_m == seg.last_m else tail
        seg.last_m = last_m
        seg.last_key = last_key

    def segments(self) -> tuple[list[_Segment], list[list[int]]]:
        """The file's segments and, in collect mode, its duplicated ``M`` ranges."""
        if not self.collect:
            return ([] if self.seg is None else [self.seg]), []
        ms, idx = self.ms, self.idx
        if not ms:
            return [], []
        # A new segment starts where M drops below every M before it (a reset).
        low = accumulate(ms, min)
        cuts = list(compress(range(1, len(ms)), map(lt, islice(ms, 1, None), low)))
        segments: list[_Segment] = []
        dups: list[int] = []
        for a, b in zip([0, *cuts], [*cuts, len(ms)], strict=True):
            keys = sorted(zip(ms[a:b], idx[a:b], strict=True))
            dups += [k[0] for k, k2 in zip(keys, islice(keys, 1, None), strict=False) if k == k2]
            distinct = sorted(set(ms[a:b]))
            diffs = map(sub, islice(distinct, 1, None), distinct)
            breaks = list(compress(range(1, len(distinct)), map(lt, repeat(1), diffs)))
            runs = [
                [distinct[s], distinct[e - 1]]
                for s, e in zip([0, *breaks], [*breaks, len(distinct)], strict=True)
            ]
            first_m, last_m = distinct[0], distinct[-1]
            head = {i for _, i in keys[: bisect_left(keys, (first_m + 1, -2))]}
            tail = {i for _, i in keys[bisect_left(keys, (last_m, -2)) :]}
            segments.append(
                _Segment(self.file, runs, first_m, last_m, head, tail, keys[0], keys[-1])
            )
        return segments, _ranges(sorted(set(dups)))


def _ranges(values: list[int]) -> list[list[int]]:
    """Sorted distinct integers as ``[lo, hi]`` runs."""
    out: list[list[int]] = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


# -- one file ---------------------------------------------------------------------------


@dataclass
class _FileScan:
    """What reading one file found."""

    venue: str
    date: str
    name: str
    path: Path
    codec: str
    part: bool
    collect: bool = False
    size: int = 0
    sha256: str = ""
    members: int = 0
    lines: int = 0
    raw_bytes: int = 0
    first_rx: int | None = None
    last_rx: int | None = None
    bad_lines: int = 0
    first_bad_line: int | None = None
    error: str | None = None
    gone: bool = False  # removed (or renamed by its writer) before it could be read
    gaps: list[dict[str, Any]] = field(default_factory=list)  # gap status lines {rx, subj}
    recorded: list[tuple[int, int]] = field(default_factory=list)  # stream gaps from..to
    segments: list[_Segment] = field(default_factory=list)
    dup_ranges: list[list[int]] = field(default_factory=list)
    needs_collect: bool = False
    order: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.date}/{self.name}"

    @property
    def first_seq(self) -> Key | None:
        return min((s.first_key for s in self.segments), default=None)

    @property
    def last_seq(self) -> Key | None:
        return max((s.last_key for s in self.segments), default=None)


class _Reader:
    """Reads one file's lines block by block into a :class:`_FileScan`."""

    def __init__(self, scan: _FileScan, tick: Callable[[int], None]) -> None:
        self.scan = scan
        self.seqs = _Seqs(scan, scan.collect)
        self.tick = tick
        self.carry = b""

    def run(self) -> None:
        scan = self.scan
        decoder = _Decoder(scan.path, scan.codec)
        try:
            for out in decoder.blocks():
                scan.raw_bytes += len(out)
                self.feed(out)
        except _Corrupt as exc:
            if not scan.part:  # an open file may end in a torn member
                scan.error = str(exc)
            decoder.drain()
        except _Unreadable as exc:
            err: OSError = exc.args[0]
            scan.error = f"cannot read: {err.strerror or err}"
            scan.gone = isinstance(err, FileNotFoundError)
        else:
            if self.carry:
                scan.error = "the last line has no newline"
        scan.size = decoder.size
        scan.sha256 = decoder.sha.hexdigest()
        scan.members = decoder.members
        if scan.bad_lines:
            verb = "does" if scan.bad_lines == 1 else "do"
            msg = (
                f'{_n(scan.bad_lines, "line")} {verb} not start with {{"rx":<int>'
                f" (first: line {scan.first_bad_line})"
            )
            scan.error = msg if scan.error is None else f"{scan.error}; {msg}"
        scan.segments, scan.dup_ranges = self.seqs.segments()
        scan.needs_collect = self.seqs.failed

    def feed(self, out: bytes) -> None:
        """Take one decompressed block: its first line (completing the carried
        one) alone, then the lines up to its last newline in bulk."""
        nl = out.find(b"\n")
        if nl < 0:
            self.carry += out
            return
        before = self.scan.lines
        self.one(self.carry + out[: nl + 1])
        last = out.rfind(b"\n")
        if last > nl:
            self.many(out, nl + 1, last + 1)
        self.carry = out[last + 1 :]
        self.tick(self.scan.lines - before)

    def one(self, line: bytes) -> None:
        self.scan.lines += 1
        m = _HEAD.match(line)
        if m is None:
            self.bad(self.scan.lines)
            return
        self.heads([m.group(1)])
        if _STATUS in line:
            self.status(line[:-1])

    def many(self, buf: bytes, start: int, end: int) -> None:
        """Lines ``buf[start:end]``, each ending with a newline; ``buf[start-1]`` is one."""
        heads = _HEADS.findall(buf, start - 1, end - 1)
        if b"" in heads:  # some lines lack the rx prefix: find them one by one
            for line in buf[start : end - 1].split(b"\n"):
                self.one(line + b"\n")
            return
        self.scan.lines += len(heads)
        self.heads(heads)
        at = buf.find(_STATUS, start, end)
        while at >= 0:
            ls = buf.rfind(b"\n", start - 1, at) + 1
            le = buf.find(b"\n", at, end)
            self.status(buf[ls:le])
            at = buf.find(_STATUS, le, end)

    def bad(self, lineno: int) -> None:
        scan = self.scan
        scan.bad_lines += 1
        if scan.first_bad_line is None:
            scan.first_bad_line = lineno

    def heads(self, heads: list[bytes]) -> None:
        """The ``N[,"seq":…]`` prefixes of some lines, in file order.

        The common shapes (no line with ``seq``; every line with ``"seq":M``;
        every line with ``"seq":[M,i]``) become one flat JSON array for orjson;
        anything else, or integers beyond 64 bits, goes line by line.
        """
        joined = b",".join(heads)
        n = len(heads)
        with_seq = joined.count(_SEQ_KEY)
        indexed = joined.count(b"[")
        ms: list[int] = []
        idx: list[int] | None = None
        try:
            if with_seq == 0:
                rxs: list[int] = orjson.loads(b"[" + joined + b"]")
            elif with_seq == n and indexed == 0:
                values = orjson.loads(b"[" + joined.replace(_SEQ_KEY, b",") + b"]")
                rxs, ms = values[0::2], values[1::2]
            elif with_seq == n and indexed == n:
                flat = joined.replace(_SEQ_KEY + b"[", b",").replace(b"]", b"")
                values = orjson.loads(b"[" + flat + b"]")
                rxs, ms, idx = values[0::3], values[1::3], values[2::3]
            else:
                raise ValueError  # a mix of shapes
        except ValueError:  # also orjson's JSONDecodeError
            rxs, ms, idx = [], [], []
            for h in heads:
                rx, _, seq = h.partition(_SEQ_KEY)
                rxs.append(int(rx))
                if not seq:
                    continue
                if seq[0] == 0x5B:  # [M,i]
                    m, _, i = seq[1:-1].partition(b",")
                    ms.append(int(m))
                    idx.append(int(i))
                else:
                    ms.append(int(seq))
                    idx.append(-1)
        scan = self.scan
        lo, hi = min(rxs), max(rxs)
        scan.first_rx = lo if scan.first_rx is None else min(lo, scan.first_rx)
        scan.last_rx = hi if scan.last_rx is None else max(hi, scan.last_rx)
        if ms:
            self.seqs.add(ms, idx)

    def status(self, line: bytes) -> None:
        """A line whose text contains ``.json.status``: record gap status lines."""
        try:
            env = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        if not isinstance(env, dict):
            return
        subj, rx, msg = env.get("subj"), env.get("rx"), env.get("msg")
        if not isinstance(subj, str) or subj.partition(".json.")[2].split(".", 1)[0] != "status":
            return
        raw = line[line.find(b',"msg":', line.find(b'"subj":')) :]
        if _GAP not in raw:
            return
        self.scan.gaps.append({"rx": rx, "subj": subj})
        if (
            isinstance(msg, dict)
            and msg.get("ssmd") == "gap"
            and msg.get("reason") == "stream"
            and isinstance(msg.get("from"), int)
            and isinstance(msg.get("to"), int)
            and msg["from"] <= msg["to"]
        ):
            self.scan.recorded.append((msg["from"], msg["to"]))


def _scan_file(scan: _FileScan, tick: Callable[[int], None]) -> None:
    _Reader(scan, tick).run()
    if scan.needs_collect:  # out of order: read again keeping every key
        again = _FileScan(
            scan.venue, scan.date, scan.name, scan.path, scan.codec, scan.part, collect=True
        )
        _Reader(again, lambda n: None).run()
        scan.segments, scan.dup_ranges = again.segments, again.dup_ranges
        for seg in scan.segments:
            seg.file = scan


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
    when the file decoded to its end)."""
    out: list[Mismatch] = []

    def check(name: str, actual: Any, *, norm: Any = None) -> None:
        if name not in entry:
            return
        expected = entry[name] if norm is None else norm(entry[name])
        if expected != actual:
            out.append(Mismatch(name, entry[name], actual))

    check("bytes", scan.size)
    check("sha256", scan.sha256)
    check("codec", scan.codec)
    if scan.error is not None:
        return out
    check("lines", scan.lines)
    check("raw_bytes", scan.raw_bytes)
    check("members", scan.members)
    check("first_rx", scan.first_rx)
    check("last_rx", scan.last_rx)
    check("first_seq", _seq_json(scan.first_seq), norm=_norm_seq)
    check("last_seq", _seq_json(scan.last_seq), norm=_norm_seq)
    check("gaps", scan.gaps, norm=_norm_gaps)
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
        on_disk = {p.name: c for p in ddir.iterdir() if (c := _codec(p.name)) and p.is_file()}
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
            codec = on_disk.get(name) or _codec(name)
            if codec is None or not (ddir / name).is_file():
                self.count(check, self.missing(venue, day, name))
                continue
            scan = _FileScan(venue, day, name, ddir / name, codec[0], codec[1])
            _scan_file(scan, tick)
            if scan.gone and scan.part:  # finished by its writer meanwhile
                continue
            scans.append(scan)
            fc = FileCheck(venue, day, name, "ok", scan.lines, error=scan.error)
            self.file(fc, scan, entries.get(name))
            self.count(check, fc)
            check.lines += scan.lines
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
        if scan.part:
            fc.status = "open"
            self.issue(
                "note",
                venue,
                day,
                name,
                f"open (being written or needs repair): {_n(scan.lines, 'line')} so far"
                + ("" if scan.error is None else f" ({scan.error})"),
            )
            return
        if entry is None:
            fc.status = "unlisted"
            self.issue("error", venue, day, name, f"not in the manifest ({_n(scan.lines, 'line')})")
        else:
            fc.mismatches = _compare(entry, scan)
            if fc.mismatches:
                fc.status = "bad"
                for m in fc.mismatches:
                    self.issue("error", venue, day, name, _mismatch_text(m))
        if scan.error is not None:
            if fc.status == "ok":
                fc.status = "bad"
            self.issue("error", venue, day, name, f"corrupt: {scan.error}")

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
