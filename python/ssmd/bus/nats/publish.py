"""The publish transport: JetStream publishes with a reply inbox and a ``Nats-Msg-Id``, acknowledgements reported to a :class:`~ssmd.bus.sink.BusSink`."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import orjson

from ssmd.bus.nats.admin import ensure_streams
from ssmd.bus.nats.connection import connect, nats_url, redact
from ssmd.bus.nats.direct import drop_subscription, header_status, subscribe_direct
from ssmd.bus.streams import StreamSpec

__all__ = ["MAX_SUBJECT_BYTES", "NatsTransport", "open_bus_sink", "subject_problem"]


log = logging.getLogger("ssmd.bus")


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
        self._sub, self.direct = await subscribe_direct(
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
        status = header_status(headers)
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
            await drop_subscription(self.nc, self._sub)
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
