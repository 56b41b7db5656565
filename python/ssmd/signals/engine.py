"""One engine for live runs and backtests: envelope lines in, :class:`Fire` out.

:class:`SignalRun` wraps the Rust engine (:class:`ssmd.core.SignalEngine`)
for one signal instance. A signal with a ``rule`` is evaluated in Rust;
any other (or any signal with ``python=True``) by calling its ``evaluate``
for every record its builders read. Errors raised by ``evaluate`` or
``payload`` are counted per instrument and logged (the first of each
instrument, then every 1000th); the run goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ssmd.core import SignalEngine
from ssmd.signals.api import Signal

if TYPE_CHECKING:
    from ssmd.archive import ArchiveReader

__all__ = ["Fire", "SignalRun"]

log = logging.getLogger("ssmd.signals")


@dataclass(frozen=True)
class Fire:
    """One fire (docs/signals.md, "Fires"): published on :attr:`subject` with :attr:`msg_id`."""

    signal: str
    instrument: str
    venue: str
    #: exchange time of the record that fired (ns), when it has one
    ts: int | None
    #: receive time of the record that fired (ns)
    rx: int
    #: JetStream sequence of its line's message (``[M, i]``: line ``i`` of message ``M``)
    source_seq: int | tuple[int, int] | None
    payload: dict[str, Any]
    msg_id: str
    subject: str

    def as_dict(self) -> dict[str, Any]:
        """The body's fields, in order."""
        seq = list(self.source_seq) if isinstance(self.source_seq, tuple) else self.source_seq
        return {
            "signal": self.signal,
            "instrument": self.instrument,
            "venue": self.venue,
            "ts": self.ts,
            "rx": self.rx,
            "source_seq": seq,
            "payload": self.payload,
        }

    def body(self) -> bytes:
        """The JSON body published on the bus (and one line of ``fires.jsonl``)."""
        return orjson.dumps(self.as_dict())

    @classmethod
    def from_body(cls, body: bytes, msg_id: str = "", subject: str = "") -> Fire:
        d = orjson.loads(body)
        seq = d.get("source_seq")
        return cls(
            signal=d["signal"],
            instrument=d["instrument"],
            venue=d["venue"],
            ts=d.get("ts"),
            rx=d["rx"],
            source_seq=tuple(seq) if isinstance(seq, list) else seq,
            payload=d.get("payload") or {},
            msg_id=msg_id,
            subject=subject,
        )


class SignalRun:
    """A signal instance driven over envelope lines (live or from the archive)."""

    def __init__(
        self,
        signal: Signal,
        *,
        venues: Sequence[str] | None = None,
        instruments: Sequence[str] | None = None,
        python: bool = False,
    ) -> None:
        self.signal = signal
        rule = None if python else signal.rule()
        self.engine = SignalEngine(
            signal.id,
            signal.engine_builders(),
            rule=None if rule is None else [c.engine() for c in rule],
            evaluate=signal.evaluate,
            payload=signal.payload,
            trigger=signal.trigger,
            venues=list(venues) if venues else None,
            instruments=list(instruments) if instruments else None,
        )
        self.errors: Counter[tuple[str, str]] = Counter()
        self.first_error: dict[tuple[str, str], str] = {}

    @property
    def native(self) -> bool:
        """Evaluated in Rust (the signal's rule) rather than by calling ``evaluate``."""
        return self.engine.native

    def subject_kinds(self) -> list[str]:
        return self.engine.subject_kinds()

    def process(self, lines: bytes, *, evaluate: bool = True, fire: bool = True) -> list[Fire]:
        """The fires of a chunk of complete envelope lines (state carries over)."""
        return self._fires(self.engine.process(lines, evaluate=evaluate, fire=fire))

    def process_next(self, reader: ArchiveReader) -> list[Fire] | None:
        """The fires of ``reader``'s next chunk, read and processed without copying it into
        Python; ``None`` when the reader is done."""
        raw = self.engine.process_next(reader)
        return None if raw is None else self._fires(raw)

    def _fires(self, raw: Sequence[tuple[Any, ...]]) -> list[Fire]:
        extra = self.signal.param_values if self.engine.native else None
        out = []
        for msg_id, subject, venue, inst, ts, rx, seq, payload in raw:
            if extra:
                payload = {**payload, **extra}
            out.append(Fire(self.signal.id, inst, venue, ts, rx, seq, payload, msg_id, subject))
        self._log_errors()
        return out

    def _log_errors(self) -> None:
        for venue, inst, message in self.engine.take_errors():
            key = (venue, inst)
            self.errors[key] += 1
            n = self.errors[key]
            if n == 1:
                self.first_error[key] = message
            if n == 1 or n % 1000 == 0:
                log.warning(
                    "signal %s: %s %s: evaluation failed (%d so far): %s",
                    self.signal.id,
                    venue,
                    inst,
                    n,
                    message,
                )

    def counters(self) -> dict[str, int]:
        return self.engine.counters()
