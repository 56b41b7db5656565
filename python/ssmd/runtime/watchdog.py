"""Data stall detection (docs/connect.md: liveness of the data, not the socket).

Each connection keeps an :class:`ActivityTracker` fed with data message counts
per key (one key per instrument, :data:`CONNECTION` for all the connection's
data, :data:`HEARTBEAT` for any frame at all). A key goes silent when nothing
arrives for it; whether a silence is a stall depends on what the key promised:

* **Rate.** The tracker estimates each key's message rate from what it
  actually observed since the key's first messages: an exponentially
  decayed count (time constant ``3 * bound``) divided by the decayed
  exposure time over which it was counted. For a steady key this is the
  plain decayed rate; right after a subscription it is the count over the
  elapsed time, with no bias towards zero, so a key that was busy for two
  seconds is judged busy after two seconds. The estimate is frozen at the
  key's last message: a silence is judged against the rate the key had
  before it went quiet. A key is stalled when it has been silent for at
  least ``bound`` seconds **and** for at least ``min_expected / rate``
  seconds (its own rate says ``min_expected`` messages, default 10, should
  have come). A key whose rate says that takes more than
  ``max_factor * bound`` is quiet and never flagged (a Kalshi market can be
  silent for hours).
* **Evidence.** A burst is not a rate: the messages of a key's first
  report after each (re)subscription and each reconnect (the snapshots that
  answer it) are not counted, nor are they for the connection's key, and a
  key is judged by rate only after at least ``min_events`` (default 5)
  further messages spread over at least ``min_span`` seconds (default
  ``bound / 20``; half a bound for :data:`CONNECTION`, whose silence costs a
  reconnect). A market that sent its snapshot and one update is quiet, not
  stalled.
* **Cadence.** A key whose venue promises a message every ``cadence``
  seconds (a Kraken Futures ticker about once a second, Kraken spot
  heartbeats) is watched with that cadence from its subscription on: silent
  for ``max(bound, 3 * cadence)`` seconds is a stall, whatever was observed
  before, including a subscription that was acknowledged and never
  delivered. A snapshot followed by silence on such a channel is a stall.

Silence is measured from the later of the key's last message and its last
(re)subscription (:meth:`ActivityTracker.watch`, :meth:`~ActivityTracker.restart`):
the clock restarts with every new subscription, and rates are kept across it,
so a key that was busy before a reconnect and stays silent after it is
flagged within the bound of the reconnect. A key is flagged once per silence
and again only every ``max_factor * bound`` while the silence lasts (a
redrive that did not help is retried, a venue in maintenance is not
hammered); the data flowing again (two reports: the snapshot that answers a
redrive is not enough) clears it. The supervisor records each stall as
a ``stall`` status line and redrives it (see :mod:`.supervisor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CONNECTION", "HEARTBEAT", "ActivityTracker", "Stall"]

#: key of the whole connection's data
CONNECTION = ""
#: key of every frame of the connection (data or control), for venues that promise heartbeats;
#: never an instrument's subject token (those have no control characters)
HEARTBEAT = "\x00heartbeat"

#: a cadenced key is stalled after this many promised intervals without a message
CADENCE_FACTOR = 3.0


@dataclass(frozen=True)
class Stall:
    """A key that went silent against its own recent rate or its promised cadence."""

    key: str
    silent: float  # seconds since its last message or (re)subscription
    rate: float  # messages/s before the silence (1/cadence when it never spoke)
    #: ``rate`` (judged by the observed rate), ``cadence`` (by the venue's promise for the
    #: key's channel) or ``heartbeat`` (no frame at all within the venue's heartbeat promise)
    basis: str = "rate"

    @property
    def whole_connection(self) -> bool:
        return self.key == CONNECTION or self.key == HEARTBEAT


class _Key:
    """What the tracker knows of one key (times are monotonic seconds)."""

    __slots__ = (
        "cadence",
        "counted",
        "events",
        "first",
        "flagged",
        "fresh",
        "last",
        "reports",
        "since",
    )

    def __init__(self, since: float, cadence: float | None) -> None:
        self.cadence = cadence
        #: decayed count of the messages after the first report, as of ``last``
        self.events = 0.0
        #: messages after the first report, undecayed and capped (the evidence)
        self.counted = 0
        self.first: float | None = None  # time of the first report
        self.last: float | None = None  # time of the last message
        self.since = since  # silence is measured from here
        self.flagged: float | None = None  # when it was last flagged
        self.reports = 0  # reports of data (not snapshots) since it was flagged
        #: (re)subscribed since its last report: the next report answers that subscription
        #: (snapshots), not a rate
        self.fresh = False


class ActivityTracker:
    """Per-key rates, promised cadences and silences (see the module docstring)."""

    __slots__ = (
        "_keys",
        "bound",
        "max_factor",
        "min_events",
        "min_expected",
        "min_span",
        "tau",
    )

    def __init__(
        self,
        bound: float = 10.0,
        *,
        min_expected: float = 10.0,
        max_factor: float = 6.0,
        min_events: int = 5,
        min_span: float | None = None,
    ) -> None:
        if bound <= 0:
            raise ValueError("stall bound must be positive")
        self.bound = bound
        self.min_expected = min_expected
        self.max_factor = max_factor
        self.min_events = min_events
        self.min_span = bound / 20 if min_span is None else min_span
        self.tau = 3.0 * bound
        self._keys: dict[str, _Key] = {}

    # -- feeding ---------------------------------------------------------

    def watch(self, key: str, now: float, cadence: float | None = None) -> None:
        """``key`` was (re)subscribed at ``now``: its silence counts from here.

        ``cadence`` is the most seconds the venue promises between two of its
        messages (``None``: no promise, judged by its observed rate only).
        """
        k = self._keys.get(key)
        if k is None:
            self._keys[key] = _Key(now, cadence)
            return
        k.cadence = cadence
        k.since = max(k.since, now)
        k.fresh = k.last is not None

    def seen(self, key: str, n: int, now: float) -> int:
        """``n`` messages of ``key`` arrived, the last at ``now`` (monotonic seconds).

        Returns how many of them count towards the key's rate: 0 for the
        report that answers a (re)subscription (its snapshots), else ``n``.
        """
        k = self._keys.get(key)
        if k is None:
            k = self._keys[key] = _Key(now, None)
        last = k.last
        counted = 0
        if last is None or k.first is None:
            k.first = now  # the first report: snapshots, not a rate
        elif k.fresh:
            # the answer to a reconnect or a redrive: snapshots again, not a rate (the
            # decayed count only ages to now)
            if now > last:
                k.events *= math.exp(-(now - last) / self.tau)
        else:
            dt = now - last
            k.events = k.events * math.exp(-dt / self.tau) + n if dt > 0 else k.events + n
            if k.counted < self.min_events:
                k.counted += n
            counted = n
        k.fresh = False
        k.last = now
        if now > k.since:
            k.since = now
        if k.flagged is not None and counted:
            # the flag (and its retry interval) goes only when the data flows again: two
            # reports after the snapshots that answer a redrive
            k.reports += 1
            if k.reports >= 2:
                k.flagged = None
        return counted

    def forget(self, key: str) -> None:
        """Stop watching ``key`` (unsubscribed)."""
        self._keys.pop(key, None)

    def restart(self, now: float) -> None:
        """A (re)connection: every key's silence counts from ``now``; rates and flags are kept,
        and each key's next report is taken as the snapshots that answer it, not as a rate."""
        for k in self._keys.values():
            if now > k.since:
                k.since = now
            k.fresh = k.last is not None

    def shift(self, dt: float) -> None:
        """``dt`` seconds were not listened to (reading paused): they are not silence."""
        if dt <= 0:
            return
        for k in self._keys.values():
            k.since += dt
            if k.last is not None:
                k.last += dt
            if k.first is not None:
                k.first += dt

    # -- judging ---------------------------------------------------------

    def rate(self, key: str) -> float:
        """The key's observed rate at its last message (messages/s), 0 if unknown."""
        k = self._keys.get(key)
        return 0.0 if k is None else self._rate(k)

    def _rate(self, k: _Key) -> float:
        # decayed count over decayed exposure since the first report: unbiased from the start
        if k.first is None or k.last is None or k.last <= k.first:
            return 0.0
        exposure = -self.tau * math.expm1(-(k.last - k.first) / self.tau)
        return k.events / exposure

    def check(self, now: float) -> list[Stall]:
        """Keys that became stalled since the last check (see the module docstring)."""
        out: list[Stall] = []
        bound = self.bound
        horizon = self.max_factor * bound
        for key, k in self._keys.items():
            silent = now - k.since
            if silent < bound:
                continue
            if k.flagged is not None and now - k.flagged < horizon:
                continue
            stall = self._judge(key, k, silent, horizon)
            if stall is not None:
                k.flagged = now
                k.reports = 0
                out.append(stall)
        return out

    def _judge(self, key: str, k: _Key, silent: float, horizon: float) -> Stall | None:
        rate = self._rate(k)
        if k.cadence is not None and silent >= max(self.bound, CADENCE_FACTOR * k.cadence):
            basis = "heartbeat" if key == HEARTBEAT else "cadence"
            return Stall(key, silent, max(rate, 1.0 / k.cadence), basis)
        if key == HEARTBEAT or rate <= 0 or k.first is None or k.last is None:
            return None
        min_span = self.bound / 2 if key == CONNECTION else self.min_span
        if k.counted < self.min_events or k.last - k.first < min_span:
            return None  # a burst is not a rate
        need = self.min_expected / rate
        if need > horizon or silent < need:
            return None
        return Stall(key, silent, rate)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
