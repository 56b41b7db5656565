"""Change data capture of the secmaster: PostgreSQL logical decoding -> NATS JetStream.

:mod:`.wal2json` turns the output of the ``wal2json`` plugin (format 2) into
:class:`Change` records; :mod:`.slot` manages the replication slot;
:mod:`.service` runs ``ssmd cdc run``: peek the slot's changes in bounded
fetches, publish one message per row change to ``cdc.{table}.{op}`` with
``Nats-Msg-Id = {lsn}:{n}``, and advance the slot only past transactions
JetStream has acknowledged in full (docs/cdc.md).
"""

from __future__ import annotations

from ssmd.cdc.wal2json import Change, Decoder, format_lsn, parse_lsn

__all__ = ["Change", "Decoder", "format_lsn", "parse_lsn"]
