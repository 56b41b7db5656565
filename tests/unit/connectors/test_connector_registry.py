"""Every registered venue has the same module files and a fixture directory (STYLE item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

import ssmd.connectors
from ssmd.connectors.base import ConnectorConfig, VenueConnector
from ssmd.connectors.registry import VENUES, connector_class
from ssmd.errors import ConfigError

PKG = Path(ssmd.connectors.__file__).parent
FILES = {"__init__.py", "config.py", "connector.py", "subscriptions.py", "symbols.py"}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.py")}


def test_template_has_the_file_set() -> None:
    assert _files(PKG / "_template") == FILES


@pytest.mark.parametrize("venue", sorted(VENUES))
def test_venue_has_the_same_files_and_fixtures(venue: str) -> None:
    module = venue.replace("-", "_")
    assert _files(PKG / module) == FILES
    assert (FIXTURES / module).is_dir()
    cls = connector_class(venue)
    assert issubclass(cls, VenueConnector) and cls.venue == venue
    assert issubclass(cls.config_class, ConnectorConfig)
    assert set(cls.default_channels) <= set(cls.all_channels)
    budget = [p for p in (PKG / module).glob("*.py") if len(p.read_text().splitlines()) > 300]
    assert not budget, f"over the 300-line budget: {budget}"


def test_unknown_venue() -> None:
    with pytest.raises(ConfigError, match="unknown venue"):
        connector_class("binance")
