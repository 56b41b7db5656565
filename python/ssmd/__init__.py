"""ssmd: stupid simple market data.

Capture, archive and signal platform for Kalshi, Kraken spot, Kraken Futures
and Polymarket. The hot path (frame parsing, routing, normalization, integrity
checks, gzip JSONL writing) is the Rust extension :mod:`ssmd._core`; this
package drives it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ssmd.core import core_version

try:
    __version__ = version("ssmd")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "core_version"]
