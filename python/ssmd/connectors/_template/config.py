"""Template settings: the venue's defaults on top of :class:`ConnectorConfig`.

Phase 1 (symbols): endpoints and the per-connection cap from the protocol
sheet. Secrets come only from environment variables (``field(default_factory=
lambda: os.environ.get(...), repr=False)``), never from files or flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssmd.connectors.base import ConnectorConfig

__all__ = ["TemplateConfig"]


@dataclass(frozen=True, kw_only=True)
class TemplateConfig(ConnectorConfig):
    """Example venue: replace the URLs and limits with the sheet's."""

    ws_url: str = "wss://example.invalid/ws"
    #: API root including its version path
    rest_url: str = "https://example.invalid/api/v1"
    #: the venue's per-connection instrument cap (documented or empirical)
    max_per_connection: int = 500
    #: keep-alive interval the venue requires
    ping_interval: float = 30.0
