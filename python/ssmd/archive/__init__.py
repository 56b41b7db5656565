"""The gzip JSONL archive (docs/archive.md): writer, merging reader, manifest.

A thin facade over the Rust writer and reader of :mod:`ssmd._core`:

* :class:`ArchiveWriter` buffers envelope lines and writes one gzip member
  (zstd frame) per :meth:`~ArchiveWriter.flush`, fsynced, into
  ``{root}/{venue}/{YYYY-MM-DD}/{HHMM}-{writer}.jsonl.gz`` (``.part`` while
  open), rotating by the lines' ``rx`` window and recording each finalized
  file in the day's ``manifest.json``. Opening a writer repairs the
  ``.part`` files a crashed run of the same writer left behind.
* :class:`ArchiveReader` merges files in ``rx`` order and yields ``bytes``
  chunks of complete lines; :func:`iter_lines` yields single lines. Both
  read every intact gzip member (zstd frame) of every file and skip damage
  to the next member: each file that lost content, or that was skipped (not
  a regular file), gives one :class:`ReadWarning` (file, members, bytes and
  lines dropped, reason), logged on the ``ssmd.archive`` logger or handed to
  ``on_warning``. Open ``.part`` files are read up to their last complete
  member. :func:`count_lines` counts by the same rules.
* :func:`iter_legacy_lines` reads archives of the original ssmd
  (``{root}/{feed}/{stream}/{YYYY-MM-DD}/{HHMM}.jsonl.gz``, raw venue
  messages) through the core into the same envelope lines, ``rx`` taken from
  each file's window; :func:`is_legacy_layout` tells the layouts apart
  (see :mod:`ssmd.archive.legacy`).

Example::

    with ArchiveWriter("data", "kraken", "host1") as w:
        w.write(lines)      # complete b"...\\n"-terminated envelope lines
        w.flush()           # durable from here on
    for line in iter_lines("data", "kraken", kinds=["trade"]):
        ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ssmd._core import ArchiveReader, ArchiveWriter, LineChunks, ReadWarning, list_files
from ssmd._core import read_manifest as _read_manifest
from ssmd.archive.legacy import (
    LegacyFile,
    count_legacy_files,
    find_legacy_files,
    is_legacy_layout,
    iter_legacy_lines,
)
from ssmd.archive.reading import (
    DateArg,
    OnWarning,
    chunks,
    count_lines,
    parse_date,
    reported,
    warn,
)

__all__ = [
    "DEFAULT_DIR",
    "ArchiveReader",
    "ArchiveWriter",
    "LegacyFile",
    "LineChunks",
    "OnWarning",
    "ReadWarning",
    "archive_dir",
    "chunks",
    "count_legacy_files",
    "count_lines",
    "find_legacy_files",
    "is_legacy_layout",
    "iter_legacy_lines",
    "iter_lines",
    "list_files",
    "parse_date",
    "read_manifest",
    "reported",
    "warn",
]

#: Archive root when neither ``--dir`` nor ``SSMD_ARCHIVE_DIR`` is given.
DEFAULT_DIR = "./data"


PathArg = str | os.PathLike[str]


def archive_dir(path: PathArg | None = None) -> Path:
    """The archive root: ``path``, else ``./data`` (the CLI passes ``SSMD_ARCHIVE_DIR``)."""
    return Path(DEFAULT_DIR if path is None else path)


def _date_str(value: DateArg | None) -> str | None:
    return None if value is None else parse_date(value).isoformat()


def iter_lines(
    root: PathArg,
    venue: str | None = None,
    date_from: DateArg | None = None,
    date_to: DateArg | None = None,
    kinds: Iterable[str] | None = None,
    instruments: Iterable[str] | None = None,
    *,
    rx_from: int | None = None,
    rx_to: int | None = None,
    on_warning: OnWarning | None = None,
) -> Iterator[bytes]:
    """Envelope lines (without their newline) of the archive in ``rx`` order.

    Files are chosen by venue and date directory (``date_from..=date_to``),
    open ``.part`` files included; ``kinds``/``instruments`` filter on the
    subject (instruments as in the subject, ``BTC_USD``, or as the venue
    spells them, ``BTC/USD``) and ``rx_from <= rx < rx_to`` on the receive
    time in ns. Damage is skipped (see the module docstring): each file that
    lost content gives a :class:`ReadWarning` to ``on_warning`` (default:
    logged on ``ssmd.archive``).
    """
    files = list_files(root, venue, _date_str(date_from), _date_str(date_to), include_parts=True)
    reader = ArchiveReader(
        files,
        kinds=None if kinds is None else list(kinds),
        instruments=None if instruments is None else list(instruments),
        rx_from=rx_from,
        rx_to=rx_to,
    )
    for chunk in chunks(reader, on_warning):
        lines = chunk.split(b"\n")
        lines.pop()  # every chunk ends with a newline
        yield from lines


def read_manifest(root: PathArg, venue: str, date: DateArg) -> dict[str, Any]:
    """The manifest of one venue and day as written; an empty one when there is none.

    Read and checked by the Rust manifest reader (the one the archive reader
    uses); :class:`~ssmd.errors.SinkError` when it is not a valid manifest.
    """
    day = parse_date(date).isoformat()
    manifest = _read_manifest(Path(root) / venue / day)
    if manifest is None:
        return {"venue": venue, "date": day, "files": []}
    return manifest
