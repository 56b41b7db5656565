"""What ``ssmd archive verify`` reports (:func:`ssmd.archive.verify.verify_archive`).

The result types: one :class:`FileCheck` per file, one :class:`DayCheck` per
venue and day, the stream sequence findings (:class:`SeqGap`,
:class:`SeqDuplicate`, :class:`SeqReset`), the report lines
(:class:`Issue`), all in one :class:`VerifyResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "DayCheck",
    "FileCheck",
    "FileStatus",
    "Issue",
    "Level",
    "Mismatch",
    "SeqDuplicate",
    "SeqGap",
    "SeqReset",
    "VerifyProgress",
    "VerifyResult",
]

Level = Literal["error", "note"]
FileStatus = Literal["ok", "bad", "missing", "unlisted", "open"]


class VerifyProgress(Protocol):
    """Where the check reports lines as it reads them (``ssmd.secmaster.sync.base.make_progress``)."""

    def add(self, description: str) -> int: ...

    def advance(self, task: int, n: int) -> None: ...

    def done(self, task: int) -> None: ...


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
    #: what reading lost (bad members, bytes between members, lines that are
    #: not envelope lines), or why the file was not read; ``None`` when nothing
    error: str | None = None
    #: members, compressed bytes and lines dropped, as the reader's warning counts them
    members_dropped: int = 0
    bytes_dropped: int = 0
    lines_dropped: int = 0

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
