"""Pipeline latency: the histogram, the sinks that record it, and its Prometheus export."""

from __future__ import annotations

import math
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from helpers import async_wait_until, wait_until
from ssmd.bus import BusSink, MemoryBus, MemoryTransport, stream_specs
from ssmd.runtime.latency import PROM_BUCKETS, LatencyHistogram, first_rx
from ssmd.runtime.metrics import Metrics
from ssmd.runtime.sink import ArchiveSink
from ssmd.runtime.status import status_line


def test_quantiles_are_within_a_bucket_of_the_truth() -> None:
    h = LatencyHistogram()
    for i in range(1, 1001):  # 1 .. 1000 ms
        h.observe(i / 1000)
    assert h.count == 1000
    for q, want in ((0.5, 0.5), (0.9, 0.9), (0.99, 0.99)):
        got = h.quantile(q)
        assert want <= got <= want * 1.08, (q, got)
    assert h.max == 1.0 and h.quantile(1.0) == 1.0
    assert math.isclose(h.sum, sum(i / 1000 for i in range(1, 1001)))


def test_weights_count_lines() -> None:
    h = LatencyHistogram()
    h.observe(0.001, 99)  # 99 lines took 1 ms
    h.observe(0.2, 1)  # one took 200 ms
    assert h.count == 100
    assert h.quantile(0.5) < 0.0011
    assert h.quantile(0.999) >= 0.2
    s = h.summary()
    assert s["lines"] == 100 and s["max_ms"] == 200.0


def test_prometheus_buckets_are_cumulative() -> None:
    h = LatencyHistogram()
    for v in (0.0001, 0.003, 0.003, 0.7, 100.0):
        h.observe(v)
    b = dict(h.buckets())
    assert b[0.0005] == 1 and b[0.005] == 3 and b[1.0] == 4 and b[30.0] == 4
    assert b[math.inf] == 5
    assert list(b) == [*PROM_BUCKETS, math.inf]


def test_empty_and_out_of_range() -> None:
    h = LatencyHistogram()
    assert h.quantile(0.99) == 0.0 and h.summary()["p99_ms"] == 0.0
    h.observe(-1.0)  # clocks: never negative
    h.observe(1e6)  # past the last bucket
    assert h.count == 2 and h.max == 1e6


def test_first_rx() -> None:
    assert first_rx(b'{"rx":1790000000000000001,"conn":"c"}\n{"rx":5,') == 1790000000000000001
    assert first_rx(b'{"rx":12,"seq":3,"conn":"c"}\n') == 12
    assert first_rx(b"not an envelope\n") == 0
    assert first_rx(b'{"rx":"x",') == 0


def _lines(n: int, rx: int) -> bytes:
    return b"".join(
        status_line("gap", "c", f"prod.kraken.json.status.c{i}", {"i": i}, rx=rx) for i in range(n)
    )


def test_archive_sink_records_receive_to_durable(tmp_path: Path) -> None:
    sink = ArchiveSink(tmp_path, "kraken", "w", flush_interval=0.05)
    rx = time.time_ns() - 30_000_000  # received 30 ms ago
    sink.write(_lines(40, rx))
    wait_until(lambda: sink.latency.count == 40, timeout=5)
    # durable after it was received: at least the 30 ms, and not minutes
    assert 0.03 <= sink.latency.quantile(0.5) < 5.0
    sink.close()
    assert sink.latency.count == 40  # each line once


async def test_bus_sink_records_receive_to_ack_per_line() -> None:
    bus = MemoryBus(stream_specs("prod", environ={}))
    t = MemoryTransport(bus)
    sink = BusSink(t, env="prod", venue="kraken")
    await t.start(sink)
    await sink.start()
    old = time.time_ns() - 2_000_000_000  # 2 s ago
    new = time.time_ns()
    subj = "prod.kraken.json.trade.A"
    line = b'{"rx":%d,"conn":"c","subj":"prod.kraken.json.trade.A","msg":{}}\n'
    sink.put(subj, line % old * 3, "c:1.0", 3)
    sink.put(subj, line % new * 7, "c:2.0", 7)  # may merge into the first message
    await async_wait_until(lambda: sink.lines_acked == 10, timeout=5)
    await sink.aclose()
    h = sink.latency
    assert h.count == 10
    # each group keeps its own receive time, merged or not: 7 lines fresh, 3 two seconds old
    assert h.quantile(0.7) < 1.0 <= 2.0 <= h.max < 10.0


def test_metrics_export_the_pipeline_histogram() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg)
    h = LatencyHistogram()
    h.observe(0.002, 5)
    m.pipeline.track("kraken", "acked", h)
    text = generate_latest(reg).decode()
    assert (
        'ssmd_pipeline_latency_seconds_bucket{le="0.001",stage="acked",venue="kraken"} 0.0' in text
    )
    assert (
        'ssmd_pipeline_latency_seconds_bucket{le="0.002",stage="acked",venue="kraken"} 5.0' in text
    )
    assert (
        'ssmd_pipeline_latency_seconds_bucket{le="+Inf",stage="acked",venue="kraken"} 5.0' in text
    )
    assert 'ssmd_pipeline_latency_seconds_count{stage="acked",venue="kraken"} 5.0' in text
    h.observe(0.5)  # read at scrape time: no copy to keep in step
    assert 'count{stage="acked",venue="kraken"} 6.0' in generate_latest(reg).decode()
