"""What every simulated venue is made of: a :class:`Venue` and a :class:`Session` per connection.

Each venue package (``sim/<venue>/``) subclasses both: the venue holds the
universe, the REST endpoints and the upgrade check; the session one
connection's subscriptions, generated data and keep-alives. They reach the
server and the connection only through :class:`Host` and :class:`Link`, so
the venue packages never import the server.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from picows import WSCloseCode

from ssmd.sim.faults import FaultState
from ssmd.sim.http import HttpError, Request, Response, RestRecords, json_response
from ssmd.sim.options import SimOptions

__all__ = ["Host", "Link", "Session", "TradeHistory", "Venue"]


T = TypeVar("T")


class TradeHistory(Generic[T]):
    """The trades a simulated venue sent, the newest ``per_key`` of each instrument
    (or market), oldest first: what its REST trade history serves."""

    def __init__(self, per_key: int = 20_000) -> None:
        self.per_key = per_key
        self.trades: dict[str, deque[T]] = {}

    def append(self, key: str, trade: T) -> None:
        log = self.trades.get(key)
        if log is None:
            log = self.trades[key] = deque(maxlen=self.per_key)
        log.append(trade)


class Host(Protocol):
    """What a venue and its sessions ask of the server."""

    options: SimOptions
    kalshi_public_key: Any
    #: data messages and control frames sent, by kind
    sent_messages: Counter[str]
    sent_controls: Counter[str]
    #: instrument (or ``channel:NAME``) -> end of its stall
    instrument_stalls: dict[str, float]

    def instrument_stalled(self, instrument: str) -> bool: ...


class Link(Protocol):
    """What a session asks of its connection."""

    @property
    def server(self) -> Host: ...

    ordinal: int
    id: str
    #: the upgrade request (headers, path)
    request: Request
    last_sent: float
    faults: FaultState

    def send_control(self, payload: bytes | str, kind: str) -> None: ...

    def send_ping(self, payload: bytes) -> None: ...

    def write_data(self, frames: list[bytes]) -> None: ...

    def close(
        self, code: WSCloseCode = WSCloseCode.GOING_AWAY, reason: bytes = b"", abrupt: bool = False
    ) -> None: ...


class Venue:
    """One simulated venue: its universe, REST endpoints and session factory."""

    name: ClassVar[str]
    ws_path: ClassVar[str]
    #: path of the REST root as ``rest_url`` names it
    rest_path: ClassVar[str]

    def __init__(self, server: Host, instruments: Sequence[str] | int | None, seed: int) -> None:
        self.server = server
        self.options = server.options
        self.seed = seed
        self.rng = random.Random(f"ssmd-sim:{self.name}:{seed}")
        #: changes to the REST listings (tests of the secmaster syncs use them)
        self.records = RestRecords()

    def instrument_ids(self) -> list[str]:
        """Every instrument id of the universe (as the WebSocket names them)."""
        raise NotImplementedError

    def authorize(self, req: Request) -> Response | None:
        """None to accept a WebSocket upgrade, or the HTTP answer refusing it."""
        return None

    def rest(self, req: Request) -> Response:
        """Answer one REST request (raise :class:`HttpError` for 4xx)."""
        raise HttpError(404, f"not found: {req.path}")

    def rest_error(
        self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        """A REST error in the venue's shape."""
        return json_response({"error": message}, status, headers)

    def session(self, conn: Link) -> Session:
        raise NotImplementedError

    def extra_urls(self, base: str) -> dict[str, str]:
        """More endpoints than ``ws_url``/``rest_url`` (e.g. Polymarket CLOB)."""
        return {}


class Session:
    """One connection's venue state: subscriptions, generated data, keep-alives."""

    def __init__(self, venue: Venue, conn: Link) -> None:
        self.venue = venue
        self.conn = conn
        self.server = conn.server
        self.rng = random.Random(f"ssmd-sim:{venue.name}:{venue.seed}:{conn.ordinal}")
        self.rnd = self.rng.random
        self.sent = conn.server.sent_messages

    def on_open(self) -> None:
        """Right after the upgrade (e.g. Kraken ``status``, Futures ``info``)."""

    def on_text(self, data: bytes) -> None:
        """A client TEXT frame."""

    def on_ping(self) -> None:
        """A client WebSocket Ping (answered with Pong already)."""

    def weight(self) -> int:
        """How many instrument streams produce data (the share of ``rate``)."""
        return 0

    def subscription_count(self) -> int:
        """Instrument subscriptions as ``stats()`` reports them."""
        return 0

    def generate(self, n: int, out: list[bytes]) -> None:
        """Append about ``n`` data messages (frames) to ``out``."""

    def housekeep(self, now: float) -> None:
        """Called every few tens of ms: heartbeats, pings, timeouts."""

    def on_slow_reader(self) -> None:
        """The send queue is full: by default the venue drops the connection.

        The queue cannot drain into a reader that does not read, so TCP is
        reset without waiting for a close handshake.
        """
        self.conn.close(abrupt=True)

    def send(self, payload: bytes | str, kind: str) -> None:
        self.conn.send_control(payload, kind)
