"""Prometheus metrics of the connector (``ssmd connect --metrics-port``).

One set per process, labelled by venue (and connection where it matters), so
several captures in one process (``ssmd demo``) share them. The hot path
never touches these objects per message: connections accumulate plain
counts and :meth:`ConnectionStats.publish` moves them here about once a
second.
"""

from __future__ import annotations

import threading

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

__all__ = ["Metrics", "metrics", "serve"]

#: receive-minus-exchange lag buckets, seconds
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
            "Bytes queued for the archive writer thread",
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
