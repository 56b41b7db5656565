"""The message bus (docs/bus.md): NATS JetStream or in-process.

* :mod:`ssmd.bus.streams`: stream names, subjects and limits.
* :mod:`ssmd.bus.sink`: :class:`BusSink`, the connector's confirmed, bounded publisher.
* :mod:`ssmd.bus.nats`: the JetStream transport, pull source and stream set-up.
* :mod:`ssmd.bus.memory`: the in-process bus with the same interface.
* :mod:`ssmd.bus.archiver`: the archiver service.
"""

from ssmd.bus.memory import MemoryBus, MemorySource, MemoryTransport
from ssmd.bus.sink import BusSink, TransportDown
from ssmd.bus.streams import StreamSpec, env_name, stream_specs, venue_stream

__all__ = [
    "BusSink",
    "MemoryBus",
    "MemorySource",
    "MemoryTransport",
    "StreamSpec",
    "TransportDown",
    "env_name",
    "stream_specs",
    "venue_stream",
]
