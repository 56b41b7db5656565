"""``wal2json`` format 2 rows -> :class:`Change` records (one per row change).

The plugin emits one JSON object per row of ``pg_logical_slot_peek_changes``:
``B`` (begin, carrying the transaction's commit ``lsn``, its ``nextlsn`` and
commit ``timestamp``), ``I``/``U``/``D`` (a row), ``M`` (a logical message:
ssmd's heartbeat) and ``C`` (commit). Logical decoding hands a transaction
over only once it committed, so the commit LSN is known at ``B``: every
change gets its id ``{lsn}:{n}`` as it streams past, with no need to hold the
transaction. Numbers with a fraction (``numeric``, ``real``) are kept as
their exact decimal text, as strings, so none loses digits; ``json``/``jsonb``
values are decoded into objects.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ssmd.errors import ParseError

__all__ = ["OPS", "Change", "Decoder", "format_lsn", "parse_lsn", "plugin_options"]

#: wal2json action -> the op name on the subject
OPS = {"I": "insert", "U": "update", "D": "delete"}


def parse_lsn(text: str | int) -> int:
    """``"16/B374D848"`` (or an int) -> the 64-bit LSN as a number."""
    if isinstance(text, int):
        return text
    hi, sep, lo = text.partition("/")
    try:
        if not sep:
            raise ValueError(text)
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        raise ParseError(f"bad LSN {text!r}: expected X/Y in hex") from None


def format_lsn(lsn: int) -> str:
    """The 64-bit LSN as PostgreSQL writes it (``16/B374D848``)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def plugin_options(tables: tuple[str, ...]) -> list[str]:
    """The ``wal2json`` options, as the variadic text arguments of the peek function."""
    qualified = ",".join(t if "." in t else f"public.{t}" for t in tables)
    return [
        "format-version",
        "2",
        "include-lsn",
        "1",
        "include-timestamp",
        "1",
        "include-pk",
        "1",
        "include-transaction",
        "1",
        "add-tables",
        qualified,
    ]


@dataclass(frozen=True, slots=True)
class Change:
    """One row change, as published on ``cdc.{table}.{op}``."""

    lsn: int  # commit LSN of the transaction
    n: int  # index of the change inside it
    table: str
    op: str  # insert, update, delete, snapshot
    ts: int | None  # commit time, ns since the epoch
    key: Mapping[str, Any]
    new: Mapping[str, Any]
    old: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"cdc.{self.table}.{self.op}"

    @property
    def msg_id(self) -> str:
        return f"{format_lsn(self.lsn)}:{self.n}"

    def body(self) -> bytes:
        return orjson.dumps(
            {
                "lsn": format_lsn(self.lsn),
                "n": self.n,
                "table": self.table,
                "op": self.op,
                "ts": self.ts,
                "key": self.key,
                "new": self.new,
                "old": self.old,
            }
        )


#: one decoder for every row: ``json.loads(data, parse_float=str)`` would build a new one
#: per call, some 5 % of the per-change cost of a large transaction (cProfile)
_JSON = json.JSONDecoder(parse_float=str)


def _ts(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def _value(col: Mapping[str, Any]) -> Any:
    v = col.get("value")
    if isinstance(v, str) and col.get("type") in ("json", "jsonb"):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def _columns(cols: Any) -> dict[str, Any]:
    if not isinstance(cols, list):
        return {}
    return {c["name"]: _value(c) for c in cols if isinstance(c, dict) and "name" in c}


class Decoder:
    """Turns the rows of one peek, in order, into changes and transaction boundaries.

    :meth:`feed` returns the :class:`Change` of a row change, the string
    ``"commit"`` at the end of a transaction (:attr:`end_lsn` is then where the
    slot may advance to once everything of it is acknowledged), or ``None``.
    """

    __slots__ = ("end_lsn", "in_txn", "lsn", "messages", "n", "ts")

    def __init__(self) -> None:
        self.lsn = 0  # commit LSN of the current transaction
        self.end_lsn = 0  # LSN just past its commit record
        self.n = 0
        self.ts: int | None = None
        self.in_txn = False
        self.messages = 0  # logical messages seen (heartbeats)

    def feed(self, data: str | bytes) -> Change | str | None:
        try:
            # a fraction stays its exact text ("0.5500"); orjson would make it a float
            obj = _JSON.decode(data if isinstance(data, str) else data.decode())
        except ValueError as exc:
            raise ParseError(f"wal2json sent something that is not JSON: {exc}") from None
        action = obj.get("action") if isinstance(obj, dict) else None
        if action == "B":
            self.lsn = parse_lsn(obj["lsn"])
            self.end_lsn = parse_lsn(obj.get("nextlsn") or obj["lsn"])
            self.ts = _ts(obj.get("timestamp"))
            self.n = 0
            self.in_txn = True
            return None
        if action == "C":
            self.in_txn = False
            return "commit"
        if action == "M":
            self.messages += 1
            if not obj.get("transactional"):
                # outside a transaction: it is its own boundary
                self.end_lsn = max(self.end_lsn, parse_lsn(obj["lsn"]))
                return "commit"
            return None
        op = OPS.get(action) if isinstance(action, str) else None
        if op is None:
            raise ParseError(f"wal2json action {action!r} is not one ssmd knows")
        new = _columns(obj.get("columns"))
        old = _columns(obj.get("identity"))
        pk = [p["name"] for p in obj.get("pk") or () if isinstance(p, dict)]
        source = old if op == "delete" or not new else new
        key = {k: source.get(k, old.get(k)) for k in pk} if pk else dict(old)
        change = Change(
            lsn=self.lsn,
            n=self.n,
            table=str(obj.get("table")),
            op=op,
            ts=self.ts,
            key=key,
            new=new,
            old=old,
        )
        self.n += 1
        return change
