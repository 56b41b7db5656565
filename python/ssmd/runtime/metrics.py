"""Prometheus metrics of the connector (``ssmd connect --metrics-port``).

One set per process, labelled by venue (and connection where it matters), so
several captures in one process (``ssmd demo``) share them. The hot path
never touches these objects per message: connections accumulate plain
counts and :meth:`ConnectionStats.publish` moves them here about once a
second.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ssmd.runtime.latency import LatencyHistogram

__all__ = ["Metrics", "PipelineLatency", "metrics", "serve"]

#: receive-minus-exchange lag buckets, seconds
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PipelineLatency(Collector):
    """``ssmd_pipeline_latency_seconds{venue,stage}``: receive time to durable or acknowledged.

    The sinks count into their own :class:`~ssmd.runtime.latency.LatencyHistogram`
    (two increments per group of lines, no lock, no Prometheus object on the hot
    path); this collector reads them when ``/metrics`` is scraped.
    """

    def __init__(self) -> None:
        self._tracked: dict[tuple[str, str], LatencyHistogram] = {}

    def track(self, venue: str, stage: str, hist: LatencyHistogram) -> None:
        """Export ``hist`` as the ``stage`` latency of ``venue`` (replacing an earlier one)."""
        self._tracked[(venue, stage)] = hist

    def collect(self) -> Iterator[HistogramMetricFamily]:
        fam = HistogramMetricFamily(
            "ssmd_pipeline_latency_seconds",
            "Receive time of a line to the moment it is safe: fsynced into the archive"
            " (stage=durable) or acknowledged by JetStream (stage=acked), per line",
            labels=["venue", "stage"],
        )
        for (venue, stage), h in list(self._tracked.items()):
            buckets = [(_le(le), n) for le, n in h.buckets()]
            fam.add_metric([venue, stage], buckets, h.sum)
        yield fam


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class Metrics:
    """Every metric ``ssmd connect`` exports."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        r = registry
        self.messages = Counter(
            "ssmd_messages", "Archived messages per venue and kind", ["venue", "kind"], registry=r
        )
        self.bytes = Counter(
            "ssmd_message_bytes", "Envelope bytes per venue and kind", ["venue", "kind"], registry=r
        )
        self.frames = Counter("ssmd_frames", "WebSocket frames received", ["venue"], registry=r)
        self.frame_bytes = Counter(
            "ssmd_frame_bytes", "WebSocket payload bytes received", ["venue"], registry=r
        )
        self.controls = Counter(
            "ssmd_control_frames",
            "Acks, heartbeats, errors, PONG (not archived)",
            ["venue"],
            registry=r,
        )
        self.malformed = Counter(
            "ssmd_malformed", "Frames kept as malformed lines", ["venue"], registry=r
        )
        self.gaps = Counter(
            "ssmd_gaps", "Sequence gaps detected by the core", ["venue"], registry=r
        )
        self.resyncs = Counter(
            "ssmd_resyncs", "Book resyncs requested (gap or checksum)", ["venue"], registry=r
        )
        self.disconnects = Counter("ssmd_disconnects", "Connections lost", ["venue"], registry=r)
        self.reconnects = Counter(
            "ssmd_reconnects", "Connections re-established", ["venue"], registry=r
        )
        self.stalls = Counter(
            "ssmd_stalls",
            "Data stalls (scope: instrument or connection)",
            ["venue", "scope"],
            registry=r,
        )
        self.venue_errors = Counter(
            "ssmd_venue_errors", "Error replies from the venue", ["venue"], registry=r
        )
        self.subscriptions = Gauge(
            "ssmd_subscriptions",
            "Instruments subscribed per connection",
            ["venue", "conn"],
            registry=r,
        )
        self.connected = Gauge(
            "ssmd_connected", "1 while the connection is up", ["venue", "conn"], registry=r
        )
        self.pending_frames = Gauge(
            "ssmd_pending_frames",
            "Frames received and not yet processed",
            ["venue", "conn"],
            registry=r,
        )
        self.sink_queue = Gauge(
            "ssmd_sink_queue_bytes",
            "Bytes accepted by the sink and not yet durable (archive) or confirmed (bus)",
            ["venue"],
            registry=r,
        )
        self.pauses = Counter(
            "ssmd_read_pauses",
            "Times reading the venue sockets paused because the sink was behind",
            ["venue"],
            registry=r,
        )
        self.paused = Counter(
            "ssmd_read_paused_seconds",
            "Seconds the venue sockets were not read because the sink was behind",
            ["venue"],
            registry=r,
        )
        self.lag = Histogram(
            "ssmd_lag_seconds",
            "Receive time minus exchange time (sampled batches)",
            ["venue"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.pipeline = PipelineLatency()
        r.register(self.pipeline)
        # the bus path (ssmd connect with NATS_URL)
        self.bus_published = Counter(
            "ssmd_bus_published_lines",
            "Envelope lines confirmed by the bus",
            ["venue"],
            registry=r,
        )
        self.bus_dropped = Counter(
            "ssmd_bus_dropped_lines",
            "Envelope lines dropped because the bus backlog was full",
            ["venue"],
            registry=r,
        )
        self.bus_pending = Gauge(
            "ssmd_bus_pending_bytes",
            "Bytes written to the bus and not yet confirmed",
            ["venue"],
            registry=r,
        )
        self.bus_resent = Counter(
            "ssmd_bus_resent",
            "Bus messages sent again (timeout or reconnect)",
            ["venue"],
            registry=r,
        )
        # the archiver (ssmd archive)
        self.arch_lines = Counter(
            "ssmd_archiver_lines", "Lines written by the archiver", ["venue"], registry=r
        )
        self.arch_bytes = Counter(
            "ssmd_archiver_bytes",
            "Uncompressed bytes written by the archiver",
            ["venue"],
            registry=r,
        )
        self.arch_bytes_out = Gauge(
            "ssmd_archiver_file_bytes",
            "Compressed bytes written by this archiver run",
            ["venue"],
            registry=r,
        )
        self.arch_pending = Gauge(
            "ssmd_archiver_pending",
            "Messages of the stream not yet delivered to the archiver",
            ["venue"],
            registry=r,
        )
        self.arch_last_write = Gauge(
            "ssmd_archiver_last_write_timestamp_seconds",
            "Unix time of the archiver's last durable write",
            ["venue"],
            registry=r,
        )
        self.arch_gaps = Counter(
            "ssmd_archiver_gaps",
            "Stream sequence gaps (messages gone before they were archived)",
            ["venue"],
            registry=r,
        )
        self.arch_missing = Counter(
            "ssmd_archiver_missing", "Stream messages lost in gaps", ["venue"], registry=r
        )
        self.arch_skipped = Counter(
            "ssmd_archiver_skipped",
            "Redelivered messages skipped because they were already archived",
            ["venue"],
            registry=r,
        )


_lock = threading.Lock()
_metrics: Metrics | None = None


def metrics() -> Metrics:
    """The process-wide metrics (created on first use)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = Metrics()
        return _metrics


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose ``/metrics`` on ``port`` (a daemon thread)."""
    metrics()
    start_http_server(port, addr=addr)
