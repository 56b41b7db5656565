"""Reading archives written by the original ssmd (docs/archive.md, "Archives of the original ssmd").

The original ssmd wrote one raw venue message per line, without an envelope:

    {root}/{feed}/{stream}/{YYYY-MM-DD}/{HHMM}.jsonl.gz

``feed`` names the venue (``kalshi``, ``kraken``, ``kraken-futures`` also
spelled ``kraken_futures`` or ``krakenfutures``, ``polymarket``), ``stream``
is free text (``crypto``, ``spot``, …), ``HHMM`` is the UTC time the file was
opened. A writer that found its name taken used ``{HHMM}-01.jsonl.gz``,
``-02``, …; uncompressed ``.jsonl`` files are read too. Files still being
written (``*.tmp``) and names that do not match are ignored.

Each file's lines go through a :class:`~ssmd._core.Processor` of that
venue with connection id ``legacy:{stream}`` (one per venue and stream, kept
across the stream's files, so book and sequence state carry over from one
file to the next), which yields the same envelope lines as live capture:
data, ``status`` and ``malformed`` lines; control frames (acks, heartbeats,
PONG) are counted and dropped as they are live. Blank lines are skipped.
Kalshi ``sid``/``seq`` and Kraken Futures ``seq`` restart on every
connection and the files do not mark reconnects, so the processors run in
the core's replay mode: a sequence number that goes back is taken as a new
connection (kept, and recorded as a ``restart`` status line) rather than as
a duplicate to drop. Kalshi
subjects get the category ``unknown``: the files carry no secmaster data.

Receive time: the files carry none, so it comes from the file's window.
Line ``i`` (0-based, blank lines included) of a file opened at ``HHMM`` on
``date`` gets ``rx = window_start_ns + i``: strictly increasing within a
file, so the file order is kept, and close to the window start
(a file of a million lines spans 1 ms of ``rx``). The collision files of a
window (``-01``, ``-02``, …) continue the numbering of the file before them.
Files of the same window start (several streams or venues) are merged by
``rx``; windows follow each other in time.

Damage is handled by the same Rust reader as the ssmd layout
(:class:`~ssmd._core.LineChunks`): every intact gzip member is read and a
bad one is skipped to the next member. Unlike the ssmd layout, whose members
are small and each checked before any of its lines is used, a member of an
original file (often the whole file) is used as it decodes, so a truncated
or corrupt member keeps the complete lines decoded before the damage. Each
file that lost content
gives one :class:`~ssmd._core.ReadWarning` to ``on_warning`` (default:
logged on ``ssmd.archive``); reading goes on with the rest of the file and
the next files. A name of the layout that is not a regular file (a FIFO, a
directory, a dangling symlink) is skipped, never opened, with a warning.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import itertools
import logging
import operator
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from ssmd._core import LineChunks, ReadWarning, list_files, subject_token
from ssmd.archive.reading import DateArg, OnWarning, parse_date, warn
from ssmd.core import Processor
from ssmd.errors import ConfigError

__all__ = [
    "LEGACY_FEEDS",
    "LegacyFile",
    "count_legacy_files",
    "find_legacy_files",
    "is_legacy_layout",
    "iter_legacy_lines",
    "legacy_venue",
    "sanitize_instrument",
]

_log = logging.getLogger("ssmd.archive")

PathArg = str | os.PathLike[str]

#: Feed directory names of the original ssmd and the venue each one names.
LEGACY_FEEDS: dict[str, str] = {
    "kalshi": "kalshi",
    "kraken": "kraken",
    "kraken-futures": "kraken-futures",
    "kraken_futures": "kraken-futures",
    "krakenfutures": "kraken-futures",
    "polymarket": "polymarket",
}

#: Raw lines handed to the core per ``Processor.process`` call.
BATCH_LINES = 2000

_NAME = re.compile(r"([01]\d|2[0-3])([0-5]\d)(?:-(\d{1,4}))?\.jsonl(\.gz)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SSMD_NAME = re.compile(r"\d{4}-.+\.jsonl\.(gz|zst)(\.part)?")
_EPOCH = dt.date(1970, 1, 1)
_NS_PER_DAY = 86_400 * 10**9
_NS_PER_MIN = 60 * 10**9


@dataclasses.dataclass(frozen=True)
class LegacyFile:
    """One file of the original ssmd layout."""

    #: the file (``…/{feed}/{stream}/{date}/{HHMM}.jsonl.gz``)
    path: Path
    #: the venue (``kalshi``, ``kraken``, ``kraken-futures``, ``polymarket``)
    venue: str
    #: the stream directory name, free text
    stream: str
    #: the date directory (UTC)
    date: dt.date
    #: ``date`` + ``HHMM`` in ns since the epoch: ``rx`` of the file's line 0
    window_start_ns: int
    #: the collision suffix: 0 for ``1415.jsonl.gz``, 1 for ``1415-01.jsonl.gz``
    part: int = 0

    @property
    def name(self) -> str:
        """The file name, e.g. ``1415.jsonl.gz``."""
        return self.path.name

    @property
    def compressed(self) -> bool:
        """Whether the file is gzip (``.jsonl.gz``) rather than plain ``.jsonl``."""
        return self.path.name.endswith(".gz")

    @property
    def conn(self) -> str:
        """The connection id its lines get in the envelope: ``legacy:{stream}``."""
        return f"legacy:{self.stream}"


def legacy_venue(name: str) -> str:
    """The venue a feed directory or ``--venue`` value names (``krakenfutures`` → ``kraken-futures``)."""
    venue = LEGACY_FEEDS.get(name.lower())
    if venue is None:
        known = ", ".join(sorted(set(LEGACY_FEEDS.values())))
        raise ConfigError(f"unknown venue {name!r} (known: {known})")
    return venue


def sanitize_instrument(name: str) -> str:
    """An instrument as it appears in subjects (the core's one rule, docs/bus.md)."""
    return subject_token(name)


def _dirs(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            entries = [e for e in it if not e.name.startswith(".") and e.is_dir()]
    except OSError as exc:
        _log.warning("%s: cannot list: %s", path, exc.strerror or exc)
        return []
    return sorted(entries, key=operator.attrgetter("name"))


def _scan(
    root: Path,
    venue: str | None,
    first: dt.date | None,
    last: dt.date | None,
    on_warning: OnWarning | None = None,
) -> Iterator[LegacyFile]:
    """Legacy files in directory order (feed, stream, date, name), lazily."""
    for feed in _dirs(root):
        feed_venue = LEGACY_FEEDS.get(feed.name.lower())
        if feed_venue is None or (venue is not None and feed_venue != venue):
            continue
        for stream in _dirs(Path(feed.path)):
            for day_dir in _dirs(Path(stream.path)):
                if not _DATE.fullmatch(day_dir.name):
                    continue
                try:
                    day = dt.date.fromisoformat(day_dir.name)
                except ValueError:
                    continue
                if (first is not None and day < first) or (last is not None and day > last):
                    continue
                yield from _day_files(Path(day_dir.path), feed_venue, stream.name, day, on_warning)


def _regular(entry: os.DirEntry[str], on_warning: OnWarning | None) -> bool:
    """Whether a file of the layout is a regular file (following symlinks); warns when not."""
    try:
        mode = entry.stat().st_mode
    except OSError as exc:
        what = "a symbolic link to nothing" if entry.is_symlink() else str(exc.strerror or exc)
        reason = f"skipped: {what}"
    else:
        if stat.S_ISREG(mode):
            return True
        kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISDIR: "a directory", stat.S_ISSOCK: "a socket"}
        what = next((k for test, k in kinds.items() if test(mode)), "not a regular file")
        reason = f"skipped: {what}"
    (warn if on_warning is None else on_warning)(ReadWarning(entry.path, reason))
    return False


def _day_files(
    path: Path, venue: str, stream: str, day: dt.date, on_warning: OnWarning | None
) -> Iterator[LegacyFile]:
    try:
        with os.scandir(path) as it:
            names = sorted(
                e.name for e in it if _NAME.fullmatch(e.name) and _regular(e, on_warning)
            )
    except OSError as exc:
        _log.warning("%s: cannot list: %s", path, exc.strerror or exc)
        return
    day_ns = (day - _EPOCH).days * _NS_PER_DAY
    found: dict[tuple[int, int], LegacyFile] = {}
    for name in names:
        m = _NAME.fullmatch(name)
        if m is None:
            continue
        hh, mm, part, gz = m.groups()
        key = (int(hh) * 60 + int(mm), int(part or 0))
        f = LegacyFile(path / name, venue, stream, day, day_ns + key[0] * _NS_PER_MIN, key[1])
        other = found.get(key)
        if other is not None:
            # 1415.jsonl next to 1415.jsonl.gz: the same file twice (one of
            # them decompressed by hand); read the gzip one only.
            keep, skip = (f, other) if gz else (other, f)
            _log.warning("%s: skipped, %s holds the same window", skip.path, keep.name)
            f = keep
        found[key] = f
    yield from sorted(found.values(), key=lambda f: (f.window_start_ns, f.part))


def find_legacy_files(
    root: PathArg,
    venue: str | None = None,
    date_from: DateArg | None = None,
    date_to: DateArg | None = None,
    *,
    on_warning: OnWarning | None = None,
) -> list[LegacyFile]:
    """The original-layout files under ``root``, sorted by window start.

    ``venue`` accepts any feed spelling (``kraken_futures``…); dates select
    the date directories ``date_from..=date_to``. Ties (several streams or
    venues in one window) are ordered by venue, stream and collision suffix.
    A name of the layout that is not a regular file gives a warning to
    ``on_warning`` and is left out.
    """
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"archive directory not found: {base}")
    canonical = None if venue is None else legacy_venue(venue)
    first = None if date_from is None else parse_date(date_from)
    last = None if date_to is None else parse_date(date_to)
    files = list(_scan(base, canonical, first, last, on_warning))
    files.sort(key=lambda f: (f.window_start_ns, f.venue, f.stream, f.part))
    return files


def is_legacy_layout(root: PathArg) -> bool:
    """True when ``root`` holds original-layout files and no ssmd-layout ones.

    Original: ``{root}/{feed}/{stream}/{YYYY-MM-DD}/{HHMM}.jsonl[.gz]``;
    ssmd: ``{root}/{venue}/{YYYY-MM-DD}/{HHMM}-{writer}.jsonl.gz`` (``.part``
    and ``.zst`` included). A missing directory is neither.
    """
    base = Path(root)
    if not base.is_dir() or _has_ssmd_files(base):
        return False
    if next(_scan(base, None, None, None, _ignore), None) is None:
        return False
    return not list_files(base, include_parts=True)


def _ignore(_: ReadWarning) -> None:
    """Warnings while only guessing the layout: the read that follows reports them."""


def _has_ssmd_files(root: Path) -> bool:
    """A quick look for an ssmd-layout file: stops at the first one."""
    for venue in _dirs(root):
        for day in _dirs(Path(venue.path)):
            if not _DATE.fullmatch(day.name):
                continue
            try:
                with os.scandir(day.path) as it:
                    if any(_SSMD_NAME.fullmatch(e.name) for e in it):
                        return True
            except OSError:
                continue
    return False


def _raw_lines(f: LegacyFile, on_warning: OnWarning | None) -> Iterator[bytes]:
    """The file's lines without their newline, damage skipped (see the module docstring)."""
    # verify=False: members are handed out as they decode, so a damaged one
    # keeps the lines before the damage (the original files often hold one
    # member for the whole file).
    reader = LineChunks(f.path, codec="gzip" if f.compressed else "plain", verify=False)
    for chunk in reader:
        lines = chunk.split(b"\n")
        lines.pop()  # every chunk ends with a newline
        yield from lines
    if reader.warning is not None:
        (warn if on_warning is None else on_warning)(reader.warning)


def _envelopes(
    files: list[LegacyFile],
    processor: Processor,
    on_warning: OnWarning | None,
    seen: list[int] | None = None,
) -> Iterator[bytes]:
    """Envelope lines of consecutive files of one stream and window, in order.

    ``seen[0]`` (when given) counts the non-blank lines read.
    """
    i = files[0].window_start_ns
    for f in files:
        frames: list[bytes] = []
        rxs: list[int] = []
        for line in _raw_lines(f, on_warning):
            if line.endswith(b"\r"):
                line = line[:-1]  # CRLF line ends
            if line.strip():
                frames.append(line)
                rxs.append(i)
                if len(frames) >= BATCH_LINES:
                    if seen is not None:
                        seen[0] += len(frames)
                    yield from _process(processor, frames, rxs)
                    frames, rxs = [], []
            i += 1
        if seen is not None:
            seen[0] += len(frames)
        if frames:
            yield from _process(processor, frames, rxs)


def _process(processor: Processor, frames: list[bytes], rxs: list[int]) -> list[bytes]:
    """Envelope lines of one batch (without their newlines)."""
    lines = processor.process(frames, rxs).lines().split(b"\n")
    lines.pop()  # the lines end with a newline (or there are none)
    return lines


def _rx(line: bytes) -> int:
    return int(line[6 : line.index(b",", 6)])  # {"rx":<int>,…


class _Filter:
    def __init__(
        self,
        kinds: Iterable[str] | None,
        instruments: Iterable[str] | None,
        rx_from: int | None,
        rx_to: int | None,
    ) -> None:
        if isinstance(kinds, str):
            kinds = [kinds]
        if isinstance(instruments, str):
            instruments = [instruments]
        self.kinds = None if kinds is None else {k.encode() for k in kinds}
        self.instruments = (
            None if instruments is None else {sanitize_instrument(i).encode() for i in instruments}
        )
        self.rx_from = rx_from
        self.rx_to = rx_to

    def __call__(self, lines: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
        kinds, instruments = self.kinds, self.instruments
        lo, hi = self.rx_from, self.rx_to
        for line in lines:
            rx = _rx(line)
            if (lo is not None and rx < lo) or (hi is not None and rx >= hi):
                continue
            if kinds is not None or instruments is not None:
                at = line.index(b',"subj":"') + 9
                subject = line[at : line.index(b'"', at)]
                _, _, rest = subject.partition(b".json.")
                kind, _, instrument = rest.partition(b".")
                if kinds is not None and kind not in kinds:
                    continue
                if instruments is not None and instrument not in instruments:
                    continue
            yield rx, line


def iter_legacy_lines(
    root: PathArg,
    venue: str | None = None,
    date_from: DateArg | None = None,
    date_to: DateArg | None = None,
    kinds: Iterable[str] | None = None,
    instruments: Iterable[str] | None = None,
    *,
    rx_from: int | None = None,
    rx_to: int | None = None,
    env: str = "prod",
    on_warning: OnWarning | None = None,
) -> Iterator[bytes]:
    """Envelope lines (without their newline) of an original-layout archive, in ``rx`` order.

    Like :func:`ssmd.archive.iter_lines`: files chosen by venue (any feed
    spelling) and date directory; ``kinds``/``instruments`` filter on the
    subject (``BTC_USD`` or ``BTC/USD``); ``rx_from <= rx < rx_to`` on the
    synthetic receive time (``window_start_ns + line index``, see the
    module docstring), so an instant selects at the window's granularity.
    ``env`` is the subject prefix. Streams lazily: at most one
    :data:`BATCH_LINES` batch per file of the current window is in memory.
    Damage is skipped; warnings go to ``on_warning`` (default: logged).
    """
    files = find_legacy_files(root, venue, date_from, date_to, on_warning=on_warning)
    keep = _Filter(kinds, instruments, rx_from, rx_to)
    processors: dict[tuple[str, str], Processor] = {}
    for start, window in itertools.groupby(files, key=operator.attrgetter("window_start_ns")):
        if rx_to is not None and start >= rx_to:
            break
        sources: list[Iterator[tuple[int, bytes]]] = []
        for (ven, stream), parts in itertools.groupby(window, key=lambda f: (f.venue, f.stream)):
            parts_list = list(parts)
            proc = processors.get((ven, stream))
            if proc is None:
                proc = processors[ven, stream] = Processor(
                    ven, parts_list[0].conn, env, replay=True
                )
            sources.append(keep(_envelopes(parts_list, proc, on_warning)))
        merged = sources[0] if len(sources) == 1 else heapq.merge(*sources, key=_first)
        for _, line in merged:
            yield line


def _first(item: tuple[int, bytes]) -> int:
    return item[0]


def count_legacy_files(
    files: Iterable[LegacyFile], *, env: str = "prod", on_warning: OnWarning | None = None
) -> Iterator[tuple[LegacyFile, int, Counter[str]]]:
    """``(file, lines, envelope lines per subject)`` for each file, by reading it.

    ``lines`` counts the file's non-blank lines (venue messages, control
    frames included); the envelope lines are what :func:`iter_legacy_lines`
    yields for it. Give each stream's files in time order: a stream's
    processor carries over from one file to the next, as when reading.
    """
    processors: dict[tuple[str, str], Processor] = {}
    for f in files:
        proc = processors.get((f.venue, f.stream))
        if proc is None:
            proc = processors[f.venue, f.stream] = Processor(f.venue, f.conn, env, replay=True)
        seen = [0]
        subjects: Counter[str] = Counter()
        for line in _envelopes([f], proc, on_warning, seen):
            at = line.index(b',"subj":"') + 9
            subjects[line[at : line.index(b'"', at)].decode()] += 1
        yield f, seen[0], subjects
