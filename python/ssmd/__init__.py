"""ssmd: stupid simple market data.

Capture, archive and signal platform for Kalshi, Kraken spot, Kraken Futures
and Polymarket. The hot path (frame parsing, routing, normalization, integrity
checks, gzip JSONL writing) is the Rust extension :mod:`ssmd._core`; this
package drives it.

Data out of the archive (docs/data.md): :func:`read` and :func:`scan` give
one normalized kind as a polars DataFrame or LazyFrame, from the Parquet
export (``ssmd archive export``) where a day has one, else straight from
the gzip JSONL archive through the core; :func:`book_at` and :func:`books`
rebuild L2 books, refusing across a recorded gap.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ssmd.archive.books import Book, BookUnavailable, book_at, books
from ssmd.archive.frames import read, scan
from ssmd.core import core_version

try:
    __version__ = version("ssmd")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "Book",
    "BookUnavailable",
    "__version__",
    "book_at",
    "books",
    "core_version",
    "read",
    "scan",
]
