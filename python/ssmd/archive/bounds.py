"""``--from``/``--to`` of the archive commands: a date, an ISO datetime or ns, within bounds.

An archive line's ``rx`` is a u64 of ns since the epoch, so a bound before
1970 or at or beyond 2**64 ns (the year 2554) cannot be meant; such values,
and anything after 9999, are a :class:`~ssmd.errors.ConfigError` (one line,
exit status 2 on the command line), never an ``OverflowError`` traceback.
"""

from __future__ import annotations

import datetime as dt

from ssmd.archive import parse_date
from ssmd.errors import ConfigError

__all__ = ["EPOCH", "MAX_RX_NS", "time_bound"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: The largest receive time an archive line can carry.
MAX_RX_NS = 2**64 - 1
_DAY = dt.timedelta(days=1)
_FORMS = "YYYY-MM-DD, an ISO datetime (YYYY-MM-DDTHH:MM[:SS], UTC) or ns since the epoch"


def _ns(t: dt.datetime) -> int:
    return (t - EPOCH) // dt.timedelta(microseconds=1) * 1000


def time_bound(option: str, value: str, *, end: bool) -> tuple[dt.date, int]:
    """``(date, rx ns)`` of a ``--from``/``--to`` value.

    A date means its whole day (``--to`` a date includes that day); a
    datetime (ISO 8601, UTC unless it has an offset) or an integer of ns
    since the epoch is an instant (``--to`` is exclusive). Times before
    1970 or beyond what an ``rx`` can hold (ns below 2**64, about the year
    2554), and anything after 9999, are a :class:`ConfigError`; a date or
    datetime after the last ``rx`` possible is taken as that last one.
    """
    if value.isdigit() and len(value) > 10:
        ns = int(value)
        if ns > MAX_RX_NS:
            raise ConfigError(
                f"bad {option} {value!r}: ns since the epoch must be below 2**64 (the year 2554)"
            )
        return dt.datetime.fromtimestamp(ns // 10**9, dt.timezone.utc).date(), ns
    day: dt.date | None = None
    if len(value) == 10:
        try:
            day = parse_date(value)
        except ConfigError:
            day = None
    try:
        if day is not None:
            t = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
            if end:
                t = (
                    t + _DAY
                    if day < dt.date.max
                    else dt.datetime.max.replace(tzinfo=dt.timezone.utc)
                )
        else:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
            utc = dt.timezone.utc
            t = t.replace(tzinfo=utc) if t.tzinfo is None else t.astimezone(utc)
    except ValueError:
        raise ConfigError(f"bad {option} {value!r}: expected {_FORMS}") from None
    except OverflowError:  # an offset that moves it out of years 1-9999
        raise ConfigError(f"bad {option} {value!r}: out of range") from None
    if t < EPOCH:
        raise ConfigError(f"bad {option} {value!r}: before 1970-01-01 (rx is ns since the epoch)")
    return (day or t.date()), min(_ns(t), MAX_RX_NS)
