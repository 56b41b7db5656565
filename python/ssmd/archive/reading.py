"""How readers report damage: :class:`ReadWarning` objects handed to ``on_warning``.

Every reader of the archive (:func:`ssmd.archive.iter_lines`,
:func:`count_lines`, the original-layout reader, ``ssmd archive cat``/``ls``)
reads each intact gzip member (zstd frame) of each file and skips damage to
the next member. Each file that lost content, or was skipped whole (not a
regular file), gives one :class:`~ssmd._core.ReadWarning`: the file,
members, compressed bytes and lines dropped, and the reason. Readers hand
them to an ``on_warning`` callable; by default :func:`warn` logs them on the
``ssmd.archive`` logger.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from ssmd._core import ArchiveReader, ReadWarning
from ssmd._core import count_lines as _count_lines
from ssmd.errors import ConfigError

T = TypeVar("T")

__all__ = ["DateArg", "OnWarning", "chunks", "count_lines", "parse_date", "warn"]

#: Where a reader hands its warnings (default: :func:`warn`).
OnWarning = Callable[[ReadWarning], None]

_log = logging.getLogger("ssmd.archive")

#: a date: ``datetime.date`` (or a datetime) or ``YYYY-MM-DD``
DateArg = str | dt.date
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(value: DateArg) -> dt.date:
    """A ``datetime.date`` (a datetime counts as its UTC date) or ``YYYY-MM-DD``."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if _DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"bad date {value!r}: expected YYYY-MM-DD")


def warn(warning: ReadWarning) -> None:
    """The default ``on_warning``: log it on the ``ssmd.archive`` logger."""
    _log.warning("%s", warning)


def chunks(reader: ArchiveReader, on_warning: OnWarning | None = None) -> Iterator[bytes]:
    """The reader's chunks; each new warning goes to ``on_warning`` as soon as it is found."""
    return reported(reader, reader, on_warning)


def reported(
    reader: ArchiveReader, items: Iterable[T], on_warning: OnWarning | None = None
) -> Iterator[T]:
    """``items``, each made of what ``reader`` read (its chunks, or what was made of
    them); after each, the reader's new warnings go to ``on_warning``."""
    report = warn if on_warning is None else on_warning
    seen = 0
    for item in items:
        yield item
        seen = _report(reader, seen, report)
    _report(reader, seen, report)


def _report(reader: ArchiveReader, seen: int, report: OnWarning) -> int:
    warnings = reader.warnings
    for w in warnings[seen:]:
        report(w)
    return len(warnings)


def count_lines(
    files: Sequence[str | os.PathLike[str]], *, on_warning: OnWarning | None = None
) -> dict[str, int]:
    """Readable envelope lines per subject in ``files``, skipping damage as the reader does."""
    counts, warnings = _count_lines(files)
    report = warn if on_warning is None else on_warning
    for w in warnings:
        report(w)
    return counts
