"""Status lines the connector records itself (docs/bus.md).

Connection and data events (``disconnect``, ``reconnect``, ``stall``,
``resync``, ``gap``) become envelope lines of kind ``status`` whose ``msg`` is
an ssmd object, written into the archive sink in order with the data:

``{"rx":<ns>,"conn":"<conn>","subj":"{env}.{venue}.json.status.{conn}","msg":{"ssmd":"disconnect",…}}``

Lines about one instrument use that instrument's token instead of the
connection id (and, for Kalshi, the category part of its data subject).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ssmd.core import subject_token

__all__ = ["STATUS_EVENTS", "status_line", "status_subject"]

#: the ``ssmd`` values of connector status lines
STATUS_EVENTS = ("disconnect", "reconnect", "gap", "resync", "stall")


def status_subject(env: str, venue: str, token: str, category: str | None = None) -> str:
    """``{env}.{venue}[.{category}].json.status.{token}``."""
    mid = f"{venue}.{category}" if category else venue
    return f"{env}.{mid}.json.status.{subject_token(token)}"


def status_line(
    event: str,
    conn: str,
    subject: str,
    detail: dict[str, Any] | None = None,
    rx: int | None = None,
) -> bytes:
    """One ``\\n``-terminated envelope line with ``msg = {"ssmd": event, **detail}``."""
    msg: dict[str, Any] = {"ssmd": event}
    if detail:
        msg.update(detail)
    env = {
        "rx": time.time_ns() if rx is None else rx,
        "conn": conn,
        "subj": subject,
        "msg": msg,
    }
    return orjson.dumps(env, option=orjson.OPT_APPEND_NEWLINE)
