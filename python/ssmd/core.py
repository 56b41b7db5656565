"""Facade over the Rust hot path for frame processing and normalization.

Together with :mod:`ssmd.archive` this is the only module that imports
:mod:`ssmd._core`; everything else goes through here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

from ssmd._core import (
    Batch,
    BuilderView,
    Processor,
    SignalEngine,
    SignalState,
    kraken_checksum,
    stamp_seq,
    subject_token,
    venues,
)
from ssmd._core import __version__ as core_version
from ssmd._core import normalize as _normalize_lines
from ssmd.types import Record, Venue, record_from_dict

__all__ = [
    "Batch",
    "BuilderView",
    "Processor",
    "SignalEngine",
    "SignalState",
    "core_version",
    "kraken_checksum",
    "normalize",
    "normalize_lines",
    "stamp_seq",
    "subject_token",
    "venues",
]


def normalize_lines(venue: str | Venue, frames: Sequence[bytes | str]) -> bytes:
    """Normalized records of ``frames`` as JSON lines (one call into Rust)."""
    name = venue.value if isinstance(venue, Venue) else venue
    return _normalize_lines(name, frames)


def normalize(venue: str | Venue, frames: Sequence[bytes | str]) -> list[Record]:
    """Normalized records of ``frames`` as typed objects."""
    return [record_from_dict(_loads(line)) for line in normalize_lines(venue, frames).splitlines()]


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:  # lone surrogate escapes copied from the wire
        return json.loads(line)
