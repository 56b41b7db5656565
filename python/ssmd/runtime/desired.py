"""The desired set: which instruments each connection should have subscribed.

One path for every change (start-up, ``--symbols``, and later the CDC feed):
:meth:`ShardPlan.place` / :meth:`ShardPlan.unplace` spread instruments over
connections under the venue's per-connection cap, and each connection's
:class:`SubscriptionState` turns its share into subscribe/unsubscribe lists
(a diff against what the venue has). The invariant, tested as a property:
while a connection is up, what the venue has subscribed on it equals its
desired share, each instrument exactly once; after a reconnect the whole
share is subscribed again, once.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ShardPlan", "SubscriptionState"]


class SubscriptionState:
    """One connection's desired instruments and what the venue has of them."""

    __slots__ = ("desired", "live", "venue")

    def __init__(self) -> None:
        self.desired: set[str] = set()
        #: subscribed at the venue on the current connection (requests sent)
        self.venue: set[str] = set()
        self.live = False

    def add(self, instruments: Iterable[str]) -> list[str]:
        """Desire ``instruments``; return those to subscribe now (live only)."""
        new = [i for i in dict.fromkeys(instruments) if i not in self.desired]
        self.desired.update(new)
        if not self.live:
            return []
        out = [i for i in new if i not in self.venue]
        self.venue.update(out)
        return out

    def remove(self, instruments: Iterable[str]) -> list[str]:
        """Stop desiring ``instruments``; return those to unsubscribe now."""
        gone = [i for i in dict.fromkeys(instruments) if i in self.desired]
        self.desired.difference_update(gone)
        if not self.live:
            return []
        out = [i for i in gone if i in self.venue]
        self.venue.difference_update(out)
        return out

    def connected(self) -> list[str]:
        """A new connection is up: subscribe the whole desired share (sorted)."""
        self.live = True
        self.venue = set(self.desired)
        return sorted(self.desired)

    def disconnected(self) -> None:
        """The connection is gone, and with it every venue-side subscription."""
        self.live = False
        self.venue.clear()

    def redrive(self, instruments: Iterable[str]) -> list[str]:
        """Instruments to unsubscribe and subscribe again (desired and subscribed)."""
        if not self.live:
            return []
        return [i for i in dict.fromkeys(instruments) if i in self.venue and i in self.desired]

    def __len__(self) -> int:
        return len(self.desired)


class ShardPlan:
    """Places instruments on connections (shards) of at most ``cap`` each.

    A new instrument goes to the lowest-numbered shard with room; a new shard
    is opened when all are full. Removing frees room that later additions
    reuse. An instrument that comes back goes to its former shard when that
    one has room, so per-connection state (the core's books) does not
    follow instruments around. Shards are never renumbered.
    """

    #: removed instruments whose former shard is remembered
    MAX_HOMES = 100_000

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("per-connection cap must be at least 1")
        self.cap = cap
        self.owner: dict[str, int] = {}
        self.sizes: list[int] = []
        self._first_free = 0
        self._home: dict[str, int] = {}

    def place(self, instruments: Iterable[str]) -> dict[int, list[str]]:
        """Assign new instruments; return ``{shard: [added…]}`` (shards may be new)."""
        out: dict[int, list[str]] = {}
        for inst in instruments:
            if inst in self.owner:
                continue
            home = self._home.pop(inst, None)
            if home is not None and self.sizes[home] < self.cap:
                i = home  # every shard below _first_free is full, so home >= it
            else:
                i = self._first_free
                while i < len(self.sizes) and self.sizes[i] >= self.cap:
                    i += 1
                if i == len(self.sizes):
                    self.sizes.append(0)
                self._first_free = i
            self.sizes[i] += 1
            self.owner[inst] = i
            out.setdefault(i, []).append(inst)
        return out

    def unplace(self, instruments: Iterable[str]) -> dict[int, list[str]]:
        """Remove instruments; return ``{shard: [removed…]}``."""
        out: dict[int, list[str]] = {}
        for inst in instruments:
            i = self.owner.pop(inst, None)
            if i is None:
                continue
            self.sizes[i] -= 1
            self._first_free = min(self._first_free, i)
            self._home[inst] = i
            if len(self._home) > self.MAX_HOMES:
                del self._home[next(iter(self._home))]
            out.setdefault(i, []).append(inst)
        return out

    def shard_of(self, instrument: str) -> int | None:
        return self.owner.get(instrument)

    @property
    def shards(self) -> int:
        return len(self.sizes)

    def __len__(self) -> int:
        return len(self.owner)
