"""Fault injection for the venue simulators.

A :class:`FaultPlan` says what goes wrong and how often; every connection
gets its own :class:`FaultState`, seeded from the simulator's seed and the
connection's ordinal, so the same plan, seed and client behaviour give the
same faults. Runtime injections (``SimServer.inject``) add one-off faults on
top of the plan.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from ssmd.errors import ConfigError

__all__ = ["FAULT_TYPES", "FaultPlan", "FaultState"]

#: Every fault the simulator counts, as named in ``stats()["faults"]``.
FAULT_TYPES = (
    "drop",
    "duplicate",
    "reorder",
    "corrupt_checksum",
    "malformed",
    "oversized",
    "stall",
    "instrument_stall",
    "channel_stall",
    "disconnect",
    "slow_reader",
    "rest_throttle",
    "rest_response",
)


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong on every connection, and how often.

    Fractions are per data message (``0.01`` = one message in a hundred).

    * ``drop``: the message is not sent (its sequence number is used, so a
      venue with ``seq`` shows a gap; a dropped Kraken book update makes the
      next checksum fail).
    * ``duplicate``: the message is sent twice.
    * ``reorder``: the message is swapped with the next one.
    * ``corrupt_checksum``: a Kraken spot book message carries a wrong CRC32
      (the book itself is right).
    * ``malformed``: an extra broken frame is sent before the message:
      truncated JSON or, every other time, invalid UTF-8.
    * ``stall_after`` / ``stall_for``: every ``stall_after`` seconds of a
      connection's life its data stops for ``stall_for`` seconds; the socket
      stays open and keep-alives (pings, heartbeats) go on.
    * ``disconnect_after``: close the connection after this many data
      messages; ``disconnect_every``: close it every this many seconds.
      ``disconnect_abrupt`` drops TCP without a close frame.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt_checksum: float = 0.0
    malformed: float = 0.0
    stall_after: float | None = None
    stall_for: float = 5.0
    disconnect_after: int | None = None
    disconnect_every: float | None = None
    disconnect_abrupt: bool = False

    def __post_init__(self) -> None:
        fractions = {
            "drop": self.drop,
            "duplicate": self.duplicate,
            "reorder": self.reorder,
            "corrupt_checksum": self.corrupt_checksum,
            "malformed": self.malformed,
        }
        for name, value in fractions.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"fault {name} must be a fraction in [0, 1], got {value}")
        if self.drop + self.duplicate + self.reorder + self.malformed > 1.0:
            raise ConfigError("drop + duplicate + reorder + malformed must not exceed 1")
        if self.stall_after is not None and self.stall_after <= 0:
            raise ConfigError(f"stall_after must be > 0 seconds, got {self.stall_after}")
        if self.stall_for <= 0:
            raise ConfigError(f"stall_for must be > 0 seconds, got {self.stall_for}")
        if self.disconnect_after is not None and self.disconnect_after < 1:
            raise ConfigError(f"disconnect_after must be >= 1 message, got {self.disconnect_after}")
        if self.disconnect_every is not None and self.disconnect_every <= 0:
            raise ConfigError(f"disconnect_every must be > 0 seconds, got {self.disconnect_every}")

    @property
    def per_message(self) -> bool:
        """True when any per-message fault (drop … malformed) is planned."""
        return (self.drop + self.duplicate + self.reorder + self.malformed) > 0.0


@dataclass
class FaultState:
    """One connection's fault dice and pending one-off injections."""

    plan: FaultPlan
    rng: random.Random
    counts: Counter[str]
    #: one-off injections still to apply: fault name -> messages left
    pending: Counter[str] = field(default_factory=Counter)
    #: size in bytes of the frames the ``oversized`` injection sends
    oversized_bytes: int = 0
    _malformed_flip: bool = False

    @classmethod
    def create(cls, plan: FaultPlan, seed: int, ordinal: int, counts: Counter[str]) -> FaultState:
        return cls(plan, random.Random(f"ssmd-sim-faults:{seed}:{ordinal}"), counts)

    @property
    def active(self) -> bool:
        return self.plan.per_message or bool(+self.pending)

    def corrupt_checksum(self) -> bool:
        """Whether the next Kraken book message gets a wrong checksum (counted)."""
        if self.pending["corrupt_checksum"] > 0:
            self.pending["corrupt_checksum"] -= 1
        elif not (self.plan.corrupt_checksum and self.rng.random() < self.plan.corrupt_checksum):
            return False
        self.counts["corrupt_checksum"] += 1
        return True

    def apply(self, messages: list[bytes]) -> list[bytes]:
        """Drop, duplicate, reorder and break ``messages`` as planned."""
        plan = self.plan
        rnd = self.rng.random
        pending = self.pending
        counts = self.counts
        t_drop = plan.drop
        t_dup = t_drop + plan.duplicate
        t_reorder = t_dup + plan.reorder
        t_malformed = t_reorder + plan.malformed
        out: list[bytes] = []
        held: bytes | None = None  # a message waiting to be swapped with the next
        for m in messages:
            fault = ""
            if pending["oversized"] > 0:
                pending["oversized"] -= 1
                counts["oversized"] += 1
                out.append(self._oversized())
            if pending:
                for name in ("drop", "duplicate", "reorder", "malformed"):
                    if pending[name] > 0:
                        pending[name] -= 1
                        fault = name
                        break
                if not +pending:
                    pending.clear()
            if not fault and t_malformed > 0.0:
                r = rnd()
                if r < t_drop:
                    fault = "drop"
                elif r < t_dup:
                    fault = "duplicate"
                elif r < t_reorder:
                    fault = "reorder"
                elif r < t_malformed:
                    fault = "malformed"
            if fault:
                counts[fault] += 1
            if fault == "drop":
                continue
            if fault == "malformed":
                out.append(self._broken(m))
            if fault == "reorder" and held is None:
                held = m
                continue
            out.append(m)
            if fault == "duplicate":
                out.append(m)
            if held is not None:
                out.append(held)
                held = None
        if held is not None:
            out.append(held)
        return out

    def _oversized(self) -> bytes:
        """A valid JSON object of ``oversized_bytes`` bytes that no venue sends."""
        pad = max(0, self.oversized_bytes - len(b'{"ssmd_sim_padding":""}'))
        return b'{"ssmd_sim_padding":"' + b"x" * pad + b'"}'

    def _broken(self, m: bytes) -> bytes:
        self._malformed_flip = not self._malformed_flip
        if self._malformed_flip:
            return m[: max(1, len(m) // 2)]  # truncated JSON
        return m[:8] + b"\xff\xfe" + m[8:]  # invalid UTF-8 inside a string
