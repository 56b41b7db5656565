"""Data-quality checks (``ssmd dq``): scores per instrument and day (docs/dq.md).

* :mod:`ssmd.dq.trades`: one instrument's trades on one day, from the archive;
* :mod:`ssmd.dq.rest`: the venue's own trade history to compare with;
* :mod:`ssmd.dq.secmaster`: the secmaster, and how it matches a day of the archive.
"""

from ssmd.dq.trades import Check, TradeReport, check_trades, score

__all__ = ["Check", "TradeReport", "check_trades", "score"]
