"""Instrument naming rules shared by the secmaster syncs and the connectors' discovery.

Kraken spot names a pair four ways: the REST key (``XXBTZUSD``), the REST
``altname`` (``XBTUSD``), the WebSocket v1 ``wsname`` (``XBT/USD``) and the
WebSocket v2 symbol (``BTC/USD``), which spells two v1 asset codes
differently (``XBT`` → ``BTC``, ``XDG`` → ``DOGE``). The secmaster stores the
v2 symbol in ``pairs.symbol``; the connector subscribes it. Both derive it
here, so they cannot disagree.

Kraken's REST root is ``https://api.kraken.com/0`` (:attr:`ssmd.types.Venue.rest_root`);
public endpoints are under ``{root}/public``. A root given with ``/public``
(the form older ``--rest-url`` values used) is accepted everywhere.
"""

from __future__ import annotations

__all__ = ["KRAKEN_V1_ASSETS", "kraken_root", "kraken_v2_symbol"]

#: WebSocket v1 / REST asset codes that WebSocket v2 spells differently
KRAKEN_V1_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}


def kraken_v2_symbol(wsname: str) -> str:
    """The v2 symbol of a v1 ``wsname`` (``XBT/USD`` → ``BTC/USD``, ``XDG/XBT`` → ``DOGE/BTC``)."""
    return "/".join(KRAKEN_V1_ASSETS.get(part, part) for part in wsname.split("/"))


def kraken_root(url: str) -> str:
    """Kraken's REST root without a trailing ``/`` or ``/public`` (``…/0``)."""
    return url.strip().rstrip("/").removesuffix("/public")
