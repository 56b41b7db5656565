"""What the runtime asks of a venue: the plug every connector fits.

The runtime (:mod:`.capture`, :mod:`.supervisor`) runs any venue through the
protocols here and never imports a connector; :mod:`ssmd.connectors.base`
implements them with the base classes every venue subclasses
(``VenueConnector``, ``Session``, ``ConnectorConfig``). Dependencies point
one way: connectors know the runtime, the runtime knows only this page.

The plain records that cross the plug (:class:`InstrumentQuery`,
:class:`Resolution`, :class:`ControlEvent`) are defined here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx

    from ssmd.core import Processor

__all__ = [
    "ConnectionSettings",
    "Connector",
    "ControlEvent",
    "InstrumentQuery",
    "Resolution",
    "VenueSession",
]


@dataclass(frozen=True)
class InstrumentQuery:
    """What the user asked for: names/ids, a category (Kalshi) or everything."""

    symbols: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    all: bool = False

    @property
    def empty(self) -> bool:
        return not (self.symbols or self.categories or self.all)


@dataclass
class Resolution:
    """Instruments to subscribe, with what the core and the watchdog need about them."""

    #: venue instrument ids, as subscribed
    instruments: list[str] = field(default_factory=list)
    #: Kraken: symbol -> (price decimals, qty decimals) for book checksums
    precisions: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Kalshi: series -> category for subjects
    categories: dict[str, str] = field(default_factory=dict)
    #: instrument -> the id its data subjects carry, when not the instrument itself
    #: (Polymarket: token -> condition id)
    subject_ids: dict[str, str] = field(default_factory=dict)
    #: subscribe the venue's channels without an instrument list (Kalshi --all)
    global_subscription: bool = False
    #: the secmaster's WAL position when it was read (``None``: not from the secmaster);
    #: changes committed after it are what a follower of the CDC stream applies
    snapshot_lsn: int | None = None


@dataclass(frozen=True)
class ControlEvent:
    """A control frame as the runtime sees it."""

    #: ``subscribed``, ``unsubscribed``, ``error``, ``pong``, ``info``, ``ignored``;
    #: ``resubscribe`` (runtime redrives the instruments), ``resubscribed`` (session did)
    kind: str
    instruments: tuple[str, ...] = ()
    channel: str | None = None
    message: str = ""


class ConnectionSettings(Protocol):
    """The connection settings the supervisor reads (``ConnectorConfig`` has them)."""

    @property
    def max_per_connection(self) -> int: ...
    @property
    def ping_interval(self) -> float: ...
    @property
    def liveness_timeout(self) -> float: ...
    @property
    def max_frame_size(self) -> int: ...
    @property
    def handshake_timeout(self) -> float: ...
    @property
    def recv_buffer(self) -> int: ...


class VenueSession(Protocol):
    """Protocol state of one connection; a new one for every (re)connection."""

    def on_open(self) -> list[bytes]:
        """Requests to send right after connecting, before any subscription."""
        ...

    def subscribe(self, instruments: Sequence[str]) -> list[bytes]:
        """Requests that subscribe ``instruments`` on every channel."""
        ...

    def unsubscribe(self, instruments: Sequence[str]) -> list[bytes]:
        """Requests that unsubscribe ``instruments`` from every channel."""
        ...

    def resync(self, instruments: Sequence[str]) -> list[bytes]:
        """Requests that bring fresh book snapshots of ``instruments``."""
        ...

    def ping(self) -> bytes | None:
        """The keep-alive message; ``None`` sends a WebSocket protocol Ping."""
        ...

    def on_control(self, kind: str, raw: bytes) -> tuple[list[ControlEvent], list[bytes]]:
        """Interpret one control frame: events for the runtime, requests to send."""
        ...


class Connector(Protocol):
    """Everything venue-specific that the runtime asks for."""

    @property
    def venue(self) -> str:
        """CLI and subject name."""
        ...

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels subscribed."""
        ...

    @property
    def config(self) -> ConnectionSettings: ...

    @property
    def ws_url(self) -> str: ...

    def auth_headers(self, url: str) -> dict[str, str]:
        """Headers for the WebSocket upgrade (fresh for every attempt)."""
        ...

    def cadence(self) -> float | None:
        """Seconds within which every subscribed instrument must speak, if promised."""
        ...

    def heartbeat_cadence(self) -> float | None:
        """Seconds within which a subscribed connection receives some frame, if promised."""
        ...

    def new_session(self, index: int) -> VenueSession: ...

    def new_processor(self, conn: str, env: str) -> Processor:
        """A core processor for one connection, configured from the resolution."""
        ...

    def needs_connection(self, index: int) -> bool:
        """Whether shard ``index`` is needed even with no instruments (venue-wide channels)."""
        ...

    def subject_id(self, instrument: str) -> str:
        """The subject token of an instrument's data (the watchdog's key)."""
        ...

    async def resolve(self, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
        """Find the instruments of ``query`` (REST or secmaster)."""
        ...
