"""The venue connector base: what every venue declares and implements.

A venue is three small classes (STYLE items 3 and 5), one file each under
``connectors/<venue>/``:

* ``config.py``: a frozen :class:`ConnectorConfig` subclass with the venue's
  defaults (endpoints, per-connection cap, keep-alive interval, channels);
* ``subscriptions.py``: a :class:`Session` subclass, the protocol state of
  one connection (request ids, server subscription ids): subscribe and
  unsubscribe requests for a set of instruments, book resync requests, and
  control frames (acks, errors, PONG) turned into :class:`ControlEvent`;
* ``connector.py``: a :class:`VenueConnector` subclass with the class
  attributes (venue, channels, session class), auth headers and keep-alive;
* ``symbols.py``: instrument resolution (:meth:`VenueConnector.resolve`):
  ``discover`` over the venue's REST API and ``from_secmaster`` over the
  secmaster's tables (:mod:`ssmd.connectors.secmaster`), both returning the
  same :class:`Resolution`; the secmaster is used when
  ``ConnectorConfig.database_url`` (``DATABASE_URL``) is set.

The runtime (:mod:`ssmd.runtime`) owns sockets, reconnects, the desired set,
stall detection and the sink; a venue never touches them. The base classes
here implement the runtime's plug (:mod:`ssmd.runtime.venue`:
``Connector``, ``VenueSession``), whose records (:class:`InstrumentQuery`,
:class:`Resolution`, :class:`ControlEvent`) venue modules import from here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import httpx
import orjson

from ssmd.connectors.secmaster import SecmasterReader
from ssmd.core import Processor, subject_token
from ssmd.errors import ClassifiedError, ConfigError, ErrorClass, classify
from ssmd.runtime.backoff import Backoff
from ssmd.runtime.venue import ControlEvent, InstrumentQuery, Resolution

__all__ = [
    "ConnectorConfig",
    "ControlEvent",
    "InstrumentQuery",
    "Resolution",
    "Session",
    "VenueConnector",
    "chunks",
    "rest_get",
]

log = logging.getLogger("ssmd.connect")


@dataclass(frozen=True, kw_only=True)
class ConnectorConfig:
    """Settings every venue has; venue subclasses change the defaults and add fields."""

    #: WebSocket endpoint (``--url``)
    ws_url: str = ""
    #: REST API root used for discovery (``--rest-url``)
    rest_url: str = ""
    #: channels to subscribe (``--channels`` narrows); empty = the venue's defaults
    channels: tuple[str, ...] = ()
    #: most instruments on one connection; more open another connection
    max_per_connection: int = 500
    #: seconds between client keep-alive pings
    ping_interval: float = 30.0
    #: reconnect when nothing at all (data, heartbeat, ping, pong) arrived for this long
    liveness_timeout: float = 60.0
    #: largest frame parsed: a longer one is archived whole as a ``malformed`` line ("frame
    #: too large") without being parsed; one over 4 times this is refused
    #: by the WebSocket layer (close 1009), and the connection reconnects (recorded)
    max_frame_size: int = 16 << 20
    #: seconds to wait for the WebSocket upgrade
    handshake_timeout: float = 10.0
    #: socket receive buffer (SO_RCVBUF) in bytes (``--recv-buffer-kb``); 0 leaves it to
    #: the kernel's autotuning. It bounds what one read brings in (Linux doubles it), and
    #: so the read buffer of each connection, which grows to about twice one read, and
    #: how long the lines of one read wait at full speed: 256 KiB gives reads of at most
    #: 512 KiB and a read buffer of at most 1 MiB, and carries ~20 Mbit/s at a 100 ms
    #: round trip (~200 at 10 ms), more than these venues send on one connection
    recv_buffer: int = 256 << 10
    #: secmaster database (``DATABASE_URL``, ``--database-url``): when set, instruments are
    #: resolved through it instead of the venue's REST API; never shown in a repr
    database_url: str | None = field(default=None, repr=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ConnectorConfig:
        """Build from a mapping (``ssmd.toml`` section, CLI); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} setting(s): {', '.join(unknown)} "
                f"(known: {', '.join(sorted(names))})"
            )
        vals = dict(values)
        if "channels" in vals and not isinstance(vals["channels"], tuple):
            vals["channels"] = tuple(vals["channels"])
        return cls(**vals)

    def replace(self, **changes: Any) -> ConnectorConfig:
        """A copy with ``changes`` (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


C = TypeVar("C", bound=ConnectorConfig)


class Session(Generic[C]):
    """Protocol state of one connection; a new one for every (re)connection."""

    def __init__(self, connector: VenueConnector[C], index: int) -> None:
        self.connector = connector
        self.config: C = connector.config
        self.channels = connector.channels
        #: shard number of the connection (0 carries venue-wide channels)
        self.index = index
        self._req = 0

    def next_id(self) -> int:
        """The next request id (1, 2, …) on this connection."""
        self._req += 1
        return self._req

    def on_open(self) -> list[bytes]:
        """Requests to send right after connecting, before any subscription."""
        return []

    def subscribe(self, instruments: Sequence[str]) -> list[bytes]:
        """Requests that subscribe ``instruments`` on every channel."""
        raise NotImplementedError

    def unsubscribe(self, instruments: Sequence[str]) -> list[bytes]:
        """Requests that unsubscribe ``instruments`` from every channel."""
        raise NotImplementedError

    def resync(self, instruments: Sequence[str]) -> list[bytes]:
        """Requests that bring fresh book snapshots of ``instruments``."""
        return []

    def ping(self) -> bytes | None:
        """The keep-alive message; ``None`` sends a WebSocket protocol Ping."""
        return None

    def on_control(self, kind: str, raw: bytes) -> tuple[list[ControlEvent], list[bytes]]:
        """Interpret one control frame: events for the runtime, requests to send."""
        return [ControlEvent("ignored", message=kind)], []


class VenueConnector(Generic[C]):
    """Everything venue-specific that the runtime asks for."""

    #: CLI and subject name
    venue: ClassVar[str]
    #: channels the venue supports
    all_channels: ClassVar[tuple[str, ...]]
    #: channels subscribed when ``--channels`` is not given
    default_channels: ClassVar[tuple[str, ...]]
    config_class: ClassVar[type[ConnectorConfig]]
    session_class: ClassVar[type[Session[Any]]]
    #: channel -> most seconds the venue promises between two messages of one instrument
    #: (the data watchdog holds every subscribed instrument to it from the first second)
    cadences: ClassVar[Mapping[str, float]] = {}
    #: secmaster tables whose changes (CDC) can change what a filter (--all, --category)
    #: resolves to: a follower re-resolves when one of them changes
    cdc_tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: C) -> None:
        self.config = config
        chosen = config.channels or self.default_channels
        bad = [c for c in chosen if c not in self.all_channels]
        if bad:
            raise ConfigError(
                f"{self.venue}: unknown channel(s) {', '.join(bad)} "
                f"(known: {', '.join(self.all_channels)})"
            )
        if config.max_per_connection < 1:
            raise ConfigError(f"{self.venue}: max_per_connection must be at least 1")
        self.channels: tuple[str, ...] = tuple(dict.fromkeys(chosen))
        self.resolution = Resolution()

    # -- connection ------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return self.config.ws_url

    def auth_headers(self, url: str) -> dict[str, str]:
        """Headers for the WebSocket upgrade (fresh for every attempt)."""
        return {}

    def cadence(self) -> float | None:
        """Seconds within which every subscribed instrument must speak, if the venue promises it."""
        promised = [self.cadences[c] for c in self.channels if c in self.cadences]
        return min(promised) if promised else None

    def heartbeat_cadence(self) -> float | None:
        """Seconds within which a subscribed connection receives some frame (heartbeats), if any."""
        return None

    def new_session(self, index: int) -> Session[C]:
        return self.session_class(self, index)

    def accepts_empty_query(self) -> bool:
        """Whether the venue can capture with no instruments named (venue-wide channels)."""
        return False

    def needs_connection(self, index: int) -> bool:
        """Whether shard ``index`` is needed even with no instruments (venue-wide channels)."""
        return self.resolution.global_subscription and index == 0

    def new_processor(self, conn: str, env: str) -> Processor:
        """A core processor for one connection, configured from the resolution."""
        p = Processor(self.venue, conn, env, max_frame_bytes=self.config.max_frame_size)
        self.configure(p)
        return p

    def configure(self, processor: Processor) -> None:
        """Hand what discovery learned to the core (precisions, categories)."""
        r = self.resolution
        for sym, (pp, qp) in r.precisions.items():
            processor.set_precision(sym, pp, qp)
        if r.categories:
            processor.set_categories(r.categories)

    def subject_id(self, instrument: str) -> str:
        """The subject token of an instrument's data (the watchdog's key)."""
        return subject_token(self.resolution.subject_ids.get(instrument, instrument))

    # -- discovery -------------------------------------------------------

    async def resolve(self, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
        """Find the instruments of ``query``; sets :attr:`resolution`.

        Through the secmaster when ``config.database_url`` is set
        (:meth:`lookup`), else through the venue's REST API (:meth:`discover`);
        both give the same resolution for the same universe. Explicit ids that
        need no lookup touch neither. Logs which source was used.
        """
        self.check_query(query)
        dsn = self.config.database_url
        if not dsn:
            log.info(
                "%s: resolving instruments through the venue's REST API at %s (DATABASE_URL not set)",
                self.venue,
                self.config.rest_url,
            )
            self.resolution = await self.discover(query, client)
            return self.resolution
        async with SecmasterReader(self.venue, dsn) as source:
            log.info(
                "%s: resolving instruments through the secmaster at %s (DATABASE_URL)",
                self.venue,
                source.where,
            )
            self.resolution = await self.lookup(query, source)
            if not source.used:
                log.info("%s: explicit ids, no secmaster lookup needed", self.venue)
            self.resolution.snapshot_lsn = source.lsn
        return self.resolution

    def check_query(self, query: InstrumentQuery) -> None:
        """Reject a query the venue cannot serve, whatever the source (ConfigError)."""

    async def discover(self, query: InstrumentQuery, client: httpx.AsyncClient) -> Resolution:
        """Resolve ``query`` through the venue's REST API (``symbols.discover``)."""
        raise NotImplementedError

    async def lookup(self, query: InstrumentQuery, source: SecmasterReader) -> Resolution:
        """Resolve ``query`` through the secmaster (``symbols.from_secmaster``)."""
        raise NotImplementedError


# -- helpers for venue modules ------------------------------------------------


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def dumps(obj: Any) -> bytes:
    """A request as compact JSON bytes."""
    return orjson.dumps(obj)


def loads(raw: bytes) -> Any:
    """A control frame as a Python object (``None`` when it is not JSON)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def rest_get(
    client: httpx.AsyncClient,
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    attempts: int = 5,
    backoff: Backoff | None = None,
) -> Any:
    """GET ``url`` and decode JSON; retry transient failures, honour 429 Retry-After."""
    bo = backoff or Backoff(base=0.5, cap=10.0)
    last: BaseException | None = None
    for _ in range(attempts):
        try:
            resp = await client.get(url, params=params)
            resp.raise_for_status()
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise ClassifiedError(
                f"REST {url}: response is not JSON", ErrorClass.NON_RETRYABLE
            ) from exc
        except (httpx.HTTPError, OSError) as exc:
            failure = classify(exc)
            last = exc
            if failure.cls is not ErrorClass.RETRYABLE:
                raise ClassifiedError(f"{url}: {failure.reason}", failure.cls) from exc
            delay = bo.next_delay(failure.retry_after)
            log.info("REST %s: %s; retrying in %.1fs", url, failure.reason, delay)
            await asyncio.sleep(delay)
    assert last is not None
    raise ClassifiedError(
        f"{url}: {classify(last).reason} (gave up after {attempts} attempts)",
        ErrorClass.RETRYABLE,
    ) from last


def unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without duplicates."""
    return list(dict.fromkeys(items))
