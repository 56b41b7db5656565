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

Modules by job: ``connection`` (URL, redaction, connect), ``admin`` (streams),
``publish`` (the transport), ``source`` (the pull consumer) and ``direct``
(the one use of nats-py internals: delivery straight from its parser).
"""

from __future__ import annotations

from ssmd.bus.nats.admin import ensure_streams, key_value, stream_info
from ssmd.bus.nats.connection import DEFAULT_URL, connect, nats_url, redact
from ssmd.bus.nats.direct import direct_delivery
from ssmd.bus.nats.publish import MAX_SUBJECT_BYTES, NatsTransport, open_bus_sink, subject_problem
from ssmd.bus.nats.source import JetStreamSource

__all__ = [
    "DEFAULT_URL",
    "MAX_SUBJECT_BYTES",
    "JetStreamSource",
    "NatsTransport",
    "connect",
    "direct_delivery",
    "ensure_streams",
    "key_value",
    "nats_url",
    "open_bus_sink",
    "redact",
    "stream_info",
    "subject_problem",
]
