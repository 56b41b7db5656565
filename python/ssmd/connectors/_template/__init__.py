"""Template for a new venue: copy this folder to ``connectors/<venue>/``.

Follow ``docs/adding-a-venue.md`` phase by phase (symbols, public channels,
golden fixtures, bench), rename ``Template*`` to the venue's class stem
(``KrakenFutures`` for ``kraken_futures``) and add the venue to
:class:`ssmd.types.Venue`: the registry finds ``{Stem}Connector`` from it.
Every venue has exactly these five files; keep each under 300 lines.
"""

from ssmd.connectors._template.config import TemplateConfig
from ssmd.connectors._template.connector import TemplateConnector

__all__ = ["TemplateConfig", "TemplateConnector"]
