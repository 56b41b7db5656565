"""The in-process bus: JetStream's semantics without a server.

Serves the embedded default (no ``NATS_URL``): streams with the same names,
subjects and limits as :mod:`ssmd.bus.streams` (oldest messages discarded
past ``max_bytes``/``max_age``), stream sequences, ``Nats-Msg-Id``
deduplication within the duplicate window (among the messages the stream
still holds: an id is forgotten with its message, so memory stays bounded), and durable pull consumers with
an acknowledgement floor, so the archiver and every other consumer run
unchanged on either bus. Everything lives in this process's memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssmd.bus.streams import StreamSpec
from ssmd.errors import ConfigError, SinkError

__all__ = [
    "MemoryBus",
    "MemorySource",
    "MemoryStream",
    "MemoryTransport",
    "SubjectFilter",
    "subject_matches",
]


#: subjects whose route :class:`MemoryBus` remembers
ROUTE_CACHE_SIZE = 65_536


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching with ``*`` (one token) and ``>`` (the rest)."""
    p = pattern.split(".")
    s = subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


@dataclass
class MemoryStream:
    spec: StreamSpec
    msgs: deque[tuple[int, str, bytes, float]] = field(default_factory=deque)
    last_seq: int = 0
    nbytes: int = 0
    total_bytes: int = 0  # every byte ever stored (a consumer's backlog is measured against it)
    ids: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)
    acked: dict[str, int] = field(default_factory=dict)  # durable -> ack floor
    delivered: dict[str, int] = field(default_factory=dict)  # durable -> last delivered
    changed: asyncio.Event | None = None

    @property
    def first_seq(self) -> int:
        return self.msgs[0][0] if self.msgs else self.last_seq + 1

    def append(self, subject: str, data: bytes, msg_id: str | None, now: float) -> tuple[int, bool]:
        spec = self.spec
        ids = self.ids
        window = spec.duplicate_window
        while ids:
            _, (_, ts) = next(iter(ids.items()))
            if now - ts <= window:
                break
            ids.popitem(last=False)
        if msg_id is not None and msg_id in ids:
            return ids[msg_id][0], True
        self.last_seq += 1
        self.msgs.append((self.last_seq, subject, data, now))
        self.nbytes += len(data)
        self.total_bytes += len(data)
        if msg_id is not None:
            ids[msg_id] = (self.last_seq, now)
        self._limit(now)
        if self.changed is not None:
            self.changed.set()
        return self.last_seq, False

    def _limit(self, now: float) -> None:
        spec = self.spec
        msgs = self.msgs
        while msgs and spec.max_bytes > 0 and self.nbytes > spec.max_bytes:
            self.nbytes -= len(msgs.popleft()[2])
        if spec.max_age > 0:
            while msgs and now - msgs[0][3] > spec.max_age:
                self.nbytes -= len(msgs.popleft()[2])
        while msgs and spec.max_msgs > 0 and len(msgs) > spec.max_msgs:
            self.nbytes -= len(msgs.popleft()[2])
        # an id is remembered while its message is held (and within the window):
        # the ids stay as bounded as the messages
        ids = self.ids
        first = self.first_seq
        while ids and next(iter(ids.values()))[0] < first:
            ids.popitem(last=False)

    def after(self, seq: int, limit: int) -> list[tuple[int, bytes]]:
        msgs = self.msgs
        if not msgs or seq >= self.last_seq:
            return []
        start = max(0, seq + 1 - msgs[0][0])
        end = min(len(msgs), start + limit)
        return [(msgs[i][0], msgs[i][2]) for i in range(start, end)]

    def matching(
        self, seq: int, limit: int, match: Callable[[str], bool]
    ) -> tuple[list[tuple[int, bytes]], int, int]:
        """Up to ``limit`` messages after ``seq`` whose subject ``match`` accepts, the
        last sequence looked at and the bytes looked at (messages that do not match are
        passed over, like a JetStream consumer's ``filter_subject``)."""
        msgs = self.msgs
        if not msgs or seq >= self.last_seq:
            return [], seq, 0
        out: list[tuple[int, bytes]] = []
        last = seq
        passed = 0
        for i in range(max(0, seq + 1 - msgs[0][0]), len(msgs)):
            s, subject, data, _ = msgs[i]
            last = s
            passed += len(data)
            if match(subject):
                out.append((s, data))
                if len(out) >= limit:
                    break
        return out, last, passed


class SubjectFilter:
    """Whether a subject matches any of some patterns, remembered per subject (a
    stream's subjects repeat: one per kind and instrument); at most ``MAX`` kept."""

    MAX = 65_536

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._seen: dict[str, bool] = {}

    def __call__(self, subject: str) -> bool:
        hit = self._seen.get(subject)
        if hit is None:
            hit = any(subject_matches(p, subject) for p in self.patterns)
            if len(self._seen) >= self.MAX:
                self._seen.clear()
            self._seen[subject] = hit
        return hit


class MemoryBus:
    """Streams in memory, addressed like JetStream's."""

    def __init__(self, specs: Sequence[StreamSpec]) -> None:
        self.streams: dict[str, MemoryStream] = {}
        self._routes: list[tuple[str, MemoryStream]] = []
        self._copies: list[tuple[str, MemoryStream]] = []
        #: subject -> (its stream, the streams that copy it): one match per subject, not
        #: per message (bounded: cleared when full)
        self._route_cache: dict[str, tuple[MemoryStream, list[MemoryStream]] | None] = {}
        self._buckets: dict[str, dict[str, bytes]] = {}
        for spec in specs:
            st = MemoryStream(spec)
            self.streams[spec.name] = st
            for pat in spec.subjects:
                self._routes.append((pat, st))
            if spec.source:
                self._copies.append((spec.source[1], st))

    def publish(
        self, subject: str, data: bytes, msg_id: str | None = None
    ) -> tuple[str, int, bool]:
        """Store one message; returns (stream, seq, duplicate). ``SinkError`` if no stream."""
        now = time.monotonic()
        cache = self._route_cache
        route = cache[subject] if subject in cache else self._route(subject)
        if route is None:
            raise SinkError(f"no stream for subject {subject}")
        st, copies = route
        seq, dup = st.append(subject, data, msg_id, now)
        if not dup:
            for copy in copies:
                copy.append(subject, data, None, now)
        return st.spec.name, seq, dup

    def _route(self, subject: str) -> tuple[MemoryStream, list[MemoryStream]] | None:
        route = None
        for pat, st in self._routes:
            if subject_matches(pat, subject):
                copies = [c for fpat, c in self._copies if subject_matches(fpat, subject)]
                route = (st, copies)
                break
        if len(self._route_cache) >= ROUTE_CACHE_SIZE:
            self._route_cache.clear()
        self._route_cache[subject] = route
        return route

    def add(self, spec: StreamSpec) -> MemoryStream:
        """One more stream (a capture joining a bus that other consumers share);
        ``ConfigError`` if its name or a subject is taken."""
        if spec.name in self.streams:
            raise ConfigError(f"the in-process bus has a stream {spec.name} already")
        for pat in spec.subjects:
            for have, st in self._routes:
                if subject_matches(pat, have) or subject_matches(have, pat):
                    raise ConfigError(
                        f"stream {spec.name}: subjects {pat} overlap stream {st.spec.name}'s"
                    )
        st = MemoryStream(spec)
        self.streams[spec.name] = st
        self._routes.extend((pat, st) for pat in spec.subjects)
        if spec.source:
            self._copies.append((spec.source[1], st))
        self._route_cache.clear()
        return st

    def kv(self, bucket: str) -> dict[str, bytes]:
        """A key-value bucket (made on first use): JetStream KV's part that consumers in
        this process need, values by key, kept as long as the bus."""
        return self._buckets.setdefault(bucket, {})

    def stream(self, name: str) -> MemoryStream:
        try:
            return self.streams[name]
        except KeyError:
            raise ConfigError(f"no stream {name}") from None

    def source(
        self,
        stream: str,
        durable: str = "archiver",
        filter_subject: str | None = None,
        filter_subjects: Sequence[str] = (),
    ) -> MemorySource:
        return MemorySource(self, stream, durable, filter_subject, filter_subjects)


class MemoryTransport:
    """:class:`~ssmd.bus.sink.BusSink` transport onto a :class:`MemoryBus`."""

    def __init__(self, bus: MemoryBus) -> None:
        self.bus = bus
        self.sink: Any = None

    async def start(self, sink: Any) -> None:
        self.sink = sink

    @property
    def connected(self) -> bool:
        return True

    async def send(self, subject: str, data: bytes, msg_id: str, token: int) -> None:
        try:
            _, _, dup = self.bus.publish(subject, data, msg_id)
        except SinkError as exc:
            self.sink.acked(token, False, error=str(exc))
            return
        self.sink.acked(token, True, duplicate=dup)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemorySource:
    """A durable pull consumer on a :class:`MemoryStream` (same API as JetStreamSource).

    With ``filter_subject`` (or several, ``filter_subjects``) it delivers only
    the messages whose subject matches (``*`` and ``>`` wildcards), as a
    filtered JetStream consumer does; the others are passed over.
    """

    def __init__(
        self,
        bus: MemoryBus,
        stream: str,
        durable: str,
        filter_subject: str | None = None,
        filter_subjects: Sequence[str] = (),
    ) -> None:
        self.st = bus.stream(stream)
        self.stream = stream
        self.durable = durable
        patterns = [*([filter_subject] if filter_subject else []), *filter_subjects]
        self.filter_subject = filter_subject
        self._match = SubjectFilter(patterns) if patterns else None
        self.delivered = 0
        #: bytes delivered so far (with discarded ones counted as passed)
        self.taken_bytes = 0

    @property
    def backlog_bytes(self) -> int:
        """Bytes stored and not yet delivered to this consumer (discarded ones excluded)."""
        return max(0, min(self.st.total_bytes - self.taken_bytes, self.st.nbytes))

    async def start(self, after: int | None = None) -> None:
        """Deliver from ``after + 1`` (the whole stream when None), like a recreated consumer."""
        st = self.st
        if st.changed is None:
            st.changed = asyncio.Event()
        st.delivered[self.durable] = after or 0
        st.acked[self.durable] = after or 0

    async def fetch(self, max_msgs: int, timeout: float) -> list[tuple[int, bytes]]:
        st = self.st
        out = self._take(max_msgs)
        if not out and timeout > 0 and st.changed is not None:
            st.changed.clear()
            try:
                await asyncio.wait_for(st.changed.wait(), timeout)
            except asyncio.TimeoutError:
                return []
            out = self._take(max_msgs)
        self.delivered += len(out)
        return out

    def _take(self, max_msgs: int) -> list[tuple[int, bytes]]:
        st = self.st
        pos = max(st.delivered[self.durable], st.first_seq - 1)
        if self._match is None:
            out = st.after(pos, max_msgs)
            if out:
                st.delivered[self.durable] = out[-1][0]
                self.taken_bytes += sum(len(d) for _, d in out)
            return out
        out, last, passed = st.matching(pos, max_msgs, self._match)
        st.delivered[self.durable] = max(st.delivered[self.durable], last)
        self.taken_bytes += passed
        return out

    async def ack_upto(self, seq: int) -> None:
        st = self.st
        st.acked[self.durable] = max(st.acked.get(self.durable, 0), seq)

    async def pending(self) -> int | None:
        st = self.st
        pos = max(st.delivered.get(self.durable, 0), st.first_seq - 1)
        if self._match is not None:
            return len(st.matching(pos, len(st.msgs) + 1, self._match)[0])
        return max(0, st.last_seq - pos)

    async def stream_bounds(self) -> tuple[int, int] | None:
        return self.st.first_seq, self.st.last_seq

    async def close(self) -> None:
        return None
