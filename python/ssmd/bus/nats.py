"""NATS JetStream: connection, streams, the publish transport and the pull source.

* :func:`connect` opens a connection that reconnects forever and turns an
  unreachable server at start-up into a one-line :class:`ConfigError`.
* :func:`ensure_streams` creates or updates the streams of
  :mod:`ssmd.bus.streams` (idempotent: an unchanged stream is left alone).
* :class:`NatsTransport` publishes with a reply inbox and a ``Nats-Msg-Id``
  header and reports JetStream's acknowledgements to a
  :class:`~ssmd.bus.sink.BusSink`; there is no awaited round trip per message.
* :class:`JetStreamSource` is the archiver's durable pull consumer
  (``AckPolicy.ALL``: one acknowledgement covers everything up to a message),
  fetching in batches with its own pull requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from ssmd.bus.streams import StreamSpec, ensure_result
from ssmd.errors import ConfigError, SinkError

__all__ = [
    "DEFAULT_URL",
    "JetStreamSource",
    "NatsTransport",
    "connect",
    "direct_delivery",
    "ensure_streams",
    "nats_url",
    "open_bus_sink",
    "redact",
    "stream_info",
]

log = logging.getLogger("ssmd.bus")

DEFAULT_URL = "nats://localhost:4222"


def nats_url(url: str | None = None) -> str:
    """``url``, else ``nats://localhost:4222`` (the CLI passes ``--nats``/``NATS_URL``)."""
    return url or DEFAULT_URL


def redact(url: str) -> str:
    """The URL without user name, password or token (safe to log)."""
    out = []
    for part in url.split(","):
        try:
            u = urlsplit(part.strip())
        except ValueError:
            out.append("<bad url>")
            continue
        host = u.hostname or ""
        if u.port:
            host = f"{host}:{u.port}"
        out.append(urlunsplit((u.scheme, host, u.path, "", "")))
    return ",".join(out)


async def connect(
    url: str | None = None,
    *,
    name: str = "ssmd",
    connect_timeout: float = 5.0,
    on_disconnect: Callable[[], Any] | None = None,
    on_reconnect: Callable[[], Any] | None = None,
    pending_size: int = 0,
) -> Any:
    """A connection that reconnects forever; ``ConfigError`` if unreachable now.

    ``pending_size=0`` makes publishing while disconnected fail at once (the
    bus sink keeps its own bounded backlog instead of nats-py's buffer).
    """
    import nats

    url = nats_url(url)

    async def error_cb(exc: Exception) -> None:
        if not client:
            return  # still connecting: the ConfigError below says it once
        log.warning("nats %s: %s", redact(url), exc)

    client: list[Any] = []

    async def disconnected_cb() -> None:
        if client and client[0].is_closed:
            return  # our own close
        log.warning("nats %s: disconnected", redact(url))
        if on_disconnect is not None:
            on_disconnect()

    async def reconnected_cb() -> None:
        log.info("nats %s: reconnected", redact(url))
        if on_reconnect is not None:
            on_reconnect()

    try:
        nc = await nats.connect(
            url,
            name=name,
            connect_timeout=connect_timeout,
            allow_reconnect=True,
            max_reconnect_attempts=1,  # at start-up; forever once connected
            reconnect_time_wait=0.25,
            pending_size=pending_size,
            error_cb=error_cb,
            disconnected_cb=disconnected_cb,
            reconnected_cb=reconnected_cb,
        )
    except Exception as exc:
        raise ConfigError(
            f"cannot reach NATS at {redact(url)}: {exc or type(exc).__name__}"
        ) from exc
    nc.options["max_reconnect_attempts"] = -1
    client.append(nc)
    return nc


async def ensure_streams(js: Any, specs: Sequence[StreamSpec]) -> list[dict[str, Any]]:
    """Create missing streams and update changed ones; returns one result per stream."""
    from nats.js.errors import NotFoundError

    results = []
    for spec in specs:
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            info = None
        try:
            if info is None:
                await js.add_stream(spec.config())
                results.append(ensure_result("created", spec))
                log.info("stream %s created", spec.name)
                continue
            changes = spec.differences(info.config)
            if not changes:
                results.append(ensure_result("unchanged", spec))
                continue
            await js.update_stream(spec.config())
            results.append(ensure_result("updated", spec, changes))
            log.info("stream %s updated: %s", spec.name, "; ".join(changes))
        except Exception as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"stream {spec.name}: {_api_error(exc)}") from exc
    return results


def _api_error(exc: Exception) -> str:
    desc = getattr(exc, "description", None)
    code = getattr(exc, "err_code", None)
    if desc:
        return f"{desc} (error {code})" if code else str(desc)
    return str(exc) or type(exc).__name__


async def stream_info(js: Any, name: str) -> Any | None:
    """The server's ``StreamInfo``, or None when the stream does not exist."""
    from nats.js.errors import NotFoundError

    try:
        return await js.stream_info(name)
    except NotFoundError:
        return None


class NatsTransport:
    """Publishes for a :class:`~ssmd.bus.sink.BusSink` over a NATS connection."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.sink: Any = None
        self._prefix = ""
        self._plen = 0
        self._sub: Any = None
        #: acknowledgements taken off the socket without nats-py's Msg (see direct_delivery)
        self.direct = False
        self._good: set[str] = set()  # subjects already checked (bounded)

    async def start(self, sink: Any) -> None:
        self.sink = sink
        self._prefix = self.nc.new_inbox()
        self._plen = len(self._prefix) + 1
        self._sub, self.direct = await _direct_subscribe(
            self.nc,
            self._prefix + ".*",
            self._on_ack,
            self._on_raw_ack,
            pending_msgs_limit=1 << 20,
            pending_bytes_limit=256 << 20,
        )

    def _on_raw_ack(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        """An acknowledgement straight from the protocol parser (the fast path)."""
        try:
            token = int(subject[self._plen :])
        except ValueError:
            return
        status = _status(headers)
        if status:
            self.sink.acked(token, False, error=f"status {status.decode()}")
            return
        self._settle(token, data)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def send(self, subject: str, data: bytes, msg_id: str, token: int) -> None:
        from nats.errors import (
            ConnectionReconnectingError,
            MaxPayloadError,
            OutboundBufferLimitError,
        )

        from ssmd.bus.sink import Refused, TransportDown

        good = self._good
        if subject not in good:
            bad = subject_problem(subject)
            if bad:  # the server would close the connection over it: refuse it here
                raise Refused(bad)
            if len(good) >= 1 << 16:
                good.clear()
            good.add(subject)
        try:
            await self.nc.publish(
                subject, data, reply=f"{self._prefix}.{token}", headers={"Nats-Msg-Id": msg_id}
            )
        except (OutboundBufferLimitError, ConnectionReconnectingError) as exc:
            raise TransportDown(str(exc)) from exc
        except MaxPayloadError as exc:
            raise Refused(
                f"message of {len(data)} bytes is over the server's max payload "
                f"({self.nc.max_payload} bytes)"
            ) from exc

    @property
    def max_payload(self) -> int:
        """The server's largest message (bytes), as it announced on connect."""
        return int(self.nc.max_payload or 0)

    async def flush(self) -> None:
        return None  # nats-py's flusher task writes pending bytes on its own

    async def _on_ack(self, msg: Any) -> None:
        try:
            token = int(msg.subject[self._plen :])
        except ValueError:
            return
        hdr = msg.headers
        if hdr and hdr.get("Status"):
            self.sink.acked(
                token, False, error=f"status {hdr.get('Status')} {hdr.get('Description', '')}"
            )
            return
        self._settle(token, msg.data)

    def _settle(self, token: int, data: bytes) -> None:
        if b'"error"' not in data and b'"duplicate"' not in data and data.startswith(b'{"stream"'):
            self.sink.acked(token, True)  # the common case: {"stream":…,"seq":N}
            return
        try:
            ack = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.sink.acked(token, False, error="unreadable acknowledgement")
            return
        err = ack.get("error") if isinstance(ack, dict) else "not an object"
        if err:
            desc = err.get("description", err) if isinstance(err, dict) else err
            # a 400 is about this message (too large for the stream, ...): it never passes;
            # others (no stream yet, storage or resources short) are retried
            code = err.get("code") if isinstance(err, dict) else None
            if code == 400 and isinstance(err, dict):
                desc = f"{desc} (error {err.get('err_code', code)})"
            self.sink.acked(token, False, error=str(desc), permanent=code == 400)
            return
        self.sink.acked(token, True, duplicate=bool(ack.get("duplicate")))

    async def close(self) -> None:
        if self._sub is not None:
            await _unsubscribe(self.nc, self._sub)
            self._sub = None


#: longest subject published: nats-server closes a connection whose protocol line passes
#: its max_control_line (4 KiB by default); subjects here hold 128-byte tokens at most
MAX_SUBJECT_BYTES = 1024


def subject_problem(subject: str) -> str | None:
    """Why nats-server would refuse ``subject`` as a publish subject, or ``None``."""
    raw = subject.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_SUBJECT_BYTES:
        return f"subject of {len(raw)} bytes is longer than {MAX_SUBJECT_BYTES}"
    if not raw or _BAD_SUBJECT_BYTE.search(raw):
        return "subject is empty or holds whitespace, control characters or wildcards"
    if b".." in raw or raw.startswith(b".") or raw.endswith(b"."):
        return "subject has an empty token"
    return None


_BAD_SUBJECT_BYTE = re.compile(rb"[\x00-\x20\x7f*>]")


def _stream_seq(reply: str | bytes) -> int:
    """The stream sequence from a JetStream ack subject (v1 and v2 forms)."""
    tokens = reply.split(b"." if isinstance(reply, bytes) else ".")  # type: ignore[arg-type]
    n = len(tokens)
    if n == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5])
    if n >= 12:  # $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>...
        return int(tokens[7])
    raise ValueError(f"not a JetStream ack subject: {reply!r}")


RawHandler = Callable[[bytes, bytes, bytes, "bytes | None"], None]


def direct_delivery(nc: Any, sid: int, handler: RawHandler | None) -> bool:
    """Hand the messages of subscription ``sid`` to ``handler(subject, reply, data, headers)``.

    nats-py turns every delivered message into a ``Msg``: its headers parsed
    into a dict, the message put on an ``asyncio.Queue`` and a task woken to
    run the callback, about 10 µs a message. The archiver's inbox receives
    tens of thousands of messages a second and needs only the reply subject
    and the payload, so its messages skip all of that: the connection's
    message dispatch (``Client._process_msg``) is wrapped once, and messages
    of a registered sid go to their handler, raw. Every other subscription
    is untouched. ``handler=None`` unregisters. Returns False (and nothing
    changes) when this nats-py has no such dispatch; the caller then keeps
    the ordinary subscription callback.
    """
    table: dict[int, RawHandler] | None = getattr(nc, "_ssmd_direct", None)
    if table is None and handler is None:
        return True  # nothing registered: nothing to undo
    if table is None:
        orig = getattr(nc, "_process_msg", None)
        if orig is None or not asyncio.iscoroutinefunction(orig):
            return False
        table = {}

        async def dispatch(
            sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
        ) -> None:
            h = table.get(sid)
            if h is None:
                await orig(sid, subject, reply, data, headers)
                return
            h(subject, reply, data, headers)

        nc._process_msg = dispatch
        nc._ssmd_direct = table
    if handler is None:
        table.pop(sid, None)
    else:
        table[sid] = handler
    return True


async def _direct_subscribe(
    nc: Any, subject: str, cb: Any, raw: RawHandler, **kw: Any
) -> tuple[Any, bool]:
    """Subscribe with ``cb``; deliver through ``raw`` instead when nats-py allows it.

    Returns ``(subscription, direct)``.
    """
    sub = await nc.subscribe(subject, cb=cb, **kw)
    sid = getattr(sub, "_id", None)
    return sub, isinstance(sid, int) and direct_delivery(nc, sid, raw)


async def _unsubscribe(nc: Any, sub: Any) -> None:
    """Unsubscribe (best effort), dropping a direct-delivery registration first."""
    sid = getattr(sub, "_id", None)
    if isinstance(sid, int):
        direct_delivery(nc, sid, None)
    with contextlib.suppress(Exception):
        await sub.unsubscribe()


def _status(headers: bytes | None) -> bytes:
    """The status code of a NATS header block (``NATS/1.0 404 No Messages``), or b""."""
    if headers and headers.startswith(b"NATS/1.0 "):
        return headers[9:12]
    return b""


class JetStreamSource:
    """A durable pull consumer read in batches (the archiver's input).

    :meth:`fetch` returns ``(stream_seq, payload)`` pairs in stream order;
    :meth:`ack_upto` acknowledges everything delivered up to a sequence (one
    confirmed ``+ACK`` on the last message: ``AckPolicy.ALL``).
    """

    def __init__(
        self,
        nc: Any,
        stream: str,
        durable: str = "archiver",
        *,
        batch: int = 4096,
        max_bytes: int = 32 << 20,
        ack_wait: float = 120.0,
        expires: float = 2.0,
        filter_subject: str | None = None,
    ) -> None:
        self.nc = nc
        self.stream = stream
        self.durable = durable
        #: only messages of these subjects (``None``: every message of the stream)
        self.filter_subject = filter_subject
        self.batch = batch
        self.max_bytes = max_bytes
        self.ack_wait = ack_wait
        self.expires = expires
        self._buf: deque[tuple[int, bytes, str | bytes]] = deque()
        self._have = asyncio.Event()
        self._inbox = ""
        self._sub: Any = None
        self._outstanding = 0  # messages asked for and not yet delivered
        self._req_at = 0.0
        self._last_reply: tuple[int, str | bytes] | None = None
        self.delivered = 0
        #: messages taken off the socket without nats-py's Msg (see direct_delivery)
        self.direct = False

    async def start(self, after: int | None = None) -> None:
        """(Re)create the durable consumer to deliver from ``after + 1`` (all when None).

        The archive on disk is the truth: recreating the consumer at the
        archived watermark delivers at once what a killed run had fetched but
        not acknowledged (instead of after ``ack_wait``), and nothing twice.
        """
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        js = self.nc.jetstream()
        cfg = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.ALL if after is None else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=None if after is None else after + 1,
            ack_wait=self.ack_wait,
            max_ack_pending=1_000_000,
            max_deliver=-1,
            max_waiting=16,
            filter_subject=self.filter_subject,
        )
        try:
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(self.stream, self.durable)
            await js.add_consumer(self.stream, cfg)
        except Exception as exc:
            raise ConfigError(
                f"consumer {self.durable} on stream {self.stream}: {_api_error(exc)}"
            ) from exc
        if self._sub is not None:
            await self.close()
        self._inbox = self.nc.new_inbox()
        self._sub, self.direct = await _direct_subscribe(
            self.nc,
            self._inbox,
            self._on_msg,
            self._on_raw,
            pending_msgs_limit=1 << 20,
            pending_bytes_limit=1 << 30,
        )

    def _on_raw(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        """A message of the inbox, straight from the protocol parser (the fast path)."""
        if not reply:
            # a status of the pull request: 404 no messages / 408 expired / 409 limits
            if _status(headers) in (b"404", b"408", b"409"):
                self._outstanding = 0
            self._have.set()
            return
        try:
            seq = _stream_seq(reply)
        except ValueError:
            return
        if self._outstanding:
            self._outstanding -= 1
        self._buf.append((seq, data, reply))
        self.delivered += 1
        if not self._have.is_set():
            self._have.set()

    async def _request(self) -> None:
        if self._outstanding > self.batch // 2:
            return
        want = self.batch - self._outstanding
        req = {"batch": want, "expires": int(self.expires * 1e9), "max_bytes": self.max_bytes}
        try:
            await self.nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}",
                orjson.dumps(req),
                reply=self._inbox,
            )
        except Exception as exc:
            log.debug("pull request failed: %s", exc)
            return
        self._outstanding += want
        self._req_at = time.monotonic()

    async def _on_msg(self, msg: Any) -> None:
        hdr = msg.headers
        if hdr and hdr.get("Status") and not msg.reply:
            # 404 no messages / 408 request expired / 409 limits: request over
            status = hdr.get("Status")
            if status in ("404", "408", "409"):
                self._outstanding = 0
            self._have.set()
            return
        try:
            seq = _stream_seq(msg.reply)
        except ValueError:
            return
        self._outstanding = max(0, self._outstanding - 1)
        self._buf.append((seq, msg.data, msg.reply))
        self.delivered += 1
        if not self._have.is_set():
            self._have.set()

    async def fetch(self, max_msgs: int, timeout: float) -> list[tuple[int, bytes]]:
        """Up to ``max_msgs`` messages; waits up to ``timeout`` for the first one."""
        now = time.monotonic()
        if self._outstanding and now - self._req_at > self.expires + 2.0:
            self._outstanding = 0  # the request died with a connection
        if len(self._buf) < self.batch // 2:
            await self._request()
        if not self._buf:
            self._have.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._have.wait(), timeout)
            if not self._buf:
                return []
        buf = self._buf
        n = min(max_msgs, len(buf))
        out = []
        last = None
        for _ in range(n):
            seq, data, reply = buf.popleft()
            out.append((seq, data))
            last = (seq, reply)
        if last is not None:
            self._last_reply = last
        return out

    async def ack_upto(self, seq: int) -> None:
        """Acknowledge everything delivered up to ``seq``, the last message fetched (confirmed)."""
        last = self._last_reply
        if last is None or last[0] != seq:
            raise SinkError(f"cannot acknowledge {seq}: not the last message fetched")
        reply = last[1]
        if isinstance(reply, bytes):
            reply = reply.decode()
        try:
            await self.nc.request(reply, b"+ACK", timeout=5.0)
        except Exception as exc:
            # not fatal: the messages come again after ack_wait and are skipped by seq
            log.warning("%s: acknowledgement of %d not confirmed: %s", self.stream, seq, exc)

    async def pending(self) -> int | None:
        """Messages of the stream not yet delivered to this consumer."""
        try:
            info = await self.nc.jetstream().consumer_info(self.stream, self.durable)
        except Exception:
            return None
        return int(info.num_pending or 0)

    async def stream_bounds(self) -> tuple[int, int] | None:
        """(first_seq, last_seq) of the stream now."""
        try:
            info = await self.nc.jetstream().stream_info(self.stream)
        except Exception:
            return None
        return int(info.state.first_seq), int(info.state.last_seq)

    async def close(self) -> None:
        if self._sub is not None:
            await _unsubscribe(self.nc, self._sub)
            self._sub = None


async def open_bus_sink(
    venue: str,
    *,
    env: str,
    url: str | None = None,
    specs: Sequence[StreamSpec] | None = None,
    max_pending_bytes: int | None = None,
    ack_timeout: float = 5.0,
    max_inflight: int | None = None,
    metrics: Any = None,
) -> tuple[Any, Any]:
    """Connect, make sure ``venue``'s streams exist, and start a bus sink.

    Returns ``(sink, nc)``; await ``sink.aclose()`` and then ``nc.close()``.
    """
    from ssmd.bus.sink import DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_PENDING, BusSink
    from ssmd.bus.streams import spec_for_venue, stream_specs

    specs = list(specs) if specs is not None else stream_specs(env)
    primary = spec_for_venue(venue, specs)
    mine = [primary] + [s for s in specs if s.source and s.source[0] == primary.name]
    holder: dict[str, Any] = {}

    def reconnected() -> None:
        sink = holder.get("sink")
        if sink is not None:
            sink.reconnected()

    nc = await connect(url, name=f"ssmd-connect-{venue}", on_reconnect=reconnected)
    try:
        await ensure_streams(nc.jetstream(), mine)
        transport = NatsTransport(nc)
        sink = BusSink(
            transport,
            env=env,
            venue=venue,
            max_pending_bytes=max_pending_bytes or DEFAULT_MAX_PENDING,
            ack_timeout=ack_timeout,
            max_inflight=max_inflight or DEFAULT_MAX_INFLIGHT,
            metrics=metrics,
        )
        await transport.start(sink)
        await sink.start()
    except BaseException:
        await nc.close()
        raise
    holder["sink"] = sink
    log.info("%s: publishing to stream %s at %s", venue, primary.name, redact(nats_url(url)))
    return sink, nc
