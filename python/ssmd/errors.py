"""The one exception tree of ssmd.

Every error ssmd raises on purpose is an :class:`SsmdError`. Subclasses also
inherit the matching standard exception, so ``except ValueError`` keeps working
for callers that do not know ssmd. The CLI turns any of them into a one-line
message and a non-zero exit.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConnectorError",
    "ParseError",
    "SinkError",
    "SsmdError",
]


class SsmdError(Exception):
    """Root of every error raised by ssmd."""

    #: stable machine-readable kind, e.g. ``"config"``
    kind: str = "ssmd"


class ParseError(SsmdError, ValueError):
    """One strict parse failed (batch calls report bad frames as results instead)."""

    kind = "parse"


class SinkError(SsmdError, OSError):
    """Writing or reading the archive (or another sink) failed."""

    kind = "sink"


class ConfigError(SsmdError, ValueError):
    """A setting, flag, key file or environment variable is missing or invalid."""

    kind = "config"


class ConnectorError(SsmdError, ConnectionError):
    """A venue connection failed in a way the supervisor has to handle."""

    kind = "connector"
