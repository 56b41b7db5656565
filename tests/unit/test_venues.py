"""Venues are defined once: every registry agrees with ``ssmd.types.Venue``.

One test per registry fails when a venue is added to (or dropped from) the
enum without the matching piece, and one per venue checks every step of
``docs/adding-a-venue.md`` is there (STYLE item 4).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ssmd.archive.books import BOOK_KINDS
from ssmd.bus.streams import VENUE_LIMITS, spec_for_venue, stream_specs, venue_stream
from ssmd.connectors.base import ConnectorConfig, VenueConnector
from ssmd.connectors.registry import connector_class
from ssmd.core import Processor, venues
from ssmd.dq.secmaster import ACTIVE_STATUSES, KNOWN_IDS, OPEN_STATUSES, REQUIRED_FIELDS
from ssmd.dq.trades import CONSECUTIVE, UNIT_PRICED
from ssmd.errors import ConfigError
from ssmd.samples import GENERATORS, frames
from ssmd.secmaster.config import (
    DEFAULT_RATES,
    RATE_ENV,
    SYNC_FOR,
    SYNCS,
    URL_ENV,
    SecmasterSettings,
)
from ssmd.secmaster.query import SOURCE_TABLES
from ssmd.secmaster.sync import RUNNERS
from ssmd.sim import venue_class
from ssmd.types import Venue

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "python" / "ssmd"
CONNECTOR_FILES = {"__init__.py", "config.py", "connector.py", "subscriptions.py", "symbols.py"}
SIM_FILES = {"__init__.py", "universe.py", "rest.py", "book.py", "session.py"}
ALL = [pytest.param(v, id=v.module) for v in Venue]


def _py_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.py")}


# -- the one definition and its spellings -----------------------------------------


def test_the_rust_core_has_the_same_venues() -> None:
    assert venues() == [v.value for v in Venue]


def test_names_and_module_ids() -> None:
    assert [v.value for v in Venue] == ["kalshi", "kraken", "kraken-futures", "polymarket"]
    assert [v.module for v in Venue] == ["kalshi", "kraken", "kraken_futures", "polymarket"]
    for v in Venue:
        assert Venue.parse(v.value) is v and Venue.parse(v.module) is v and Venue.parse(v) is v
        assert "-" not in v.module and v.value.replace("-", "_") == v.module
    assert Venue.names() == "kalshi, kraken, kraken-futures, polymarket"


@pytest.mark.parametrize("name", ["binance", "", "KRAKEN", "kraken futures", "kraken_futures "])
def test_unknown_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown venue"):
        Venue.parse(name)


# -- every registry is keyed by exactly the venues --------------------------------


def test_registries_cover_every_venue_and_nothing_else() -> None:
    every = set(Venue)
    for by_venue in (
        VENUE_LIMITS,
        GENERATORS,
        SYNC_FOR,
        BOOK_KINDS,
        CONSECUTIVE,
        UNIT_PRICED,
        ACTIVE_STATUSES,
        OPEN_STATUSES,
        REQUIRED_FIELDS,
        KNOWN_IDS,
    ):
        assert set(by_venue) == every
    assert set(RUNNERS) == set(SYNCS) == set(SYNC_FOR.values())
    values = {v.value for v in Venue}
    for registry in (URL_ENV, RATE_ENV, DEFAULT_RATES, SOURCE_TABLES):
        assert set(registry) == values
    assert set(SecmasterSettings.load({}).apis) == values


def test_each_venue_has_one_primary_stream() -> None:
    specs = stream_specs("prod", environ={})
    primary = [s for s in specs if s.venue is not None]
    assert [s.venue for s in primary] == [v.value for v in Venue]
    for v in Venue:
        spec = spec_for_venue(v, specs)
        assert spec.name == venue_stream(v, "prod") == f"PROD_{v.module.upper()}"
        assert spec.subjects == (f"prod.{v.value}.>",)


# -- every step of docs/adding-a-venue.md ------------------------------------------


@pytest.mark.parametrize("venue", ALL)
def test_rust_parser_and_core(venue: Venue) -> None:
    assert (ROOT / "rust" / "venues" / f"{venue.module}.rs").is_file()
    Processor(venue.value, "c")  # the core knows it


@pytest.mark.parametrize("venue", ALL)
def test_connector_folder(venue: Venue) -> None:
    assert _py_files(PKG / "connectors" / venue.module) == CONNECTOR_FILES
    cls = connector_class(venue)
    assert cls is connector_class(venue.value) is connector_class(venue.module)
    assert issubclass(cls, VenueConnector) and cls.venue == venue.value
    assert issubclass(cls.config_class, ConnectorConfig)
    assert set(cls.default_channels) <= set(cls.all_channels)
    assert cls.config_class().rest_url == venue.rest_root


def test_the_template_has_the_connector_files() -> None:
    assert _py_files(PKG / "connectors" / "_template") == CONNECTOR_FILES


@pytest.mark.parametrize("venue", ALL)
def test_simulator(venue: Venue) -> None:
    assert _py_files(PKG / "sim" / venue.module) == SIM_FILES  # the same layout for every venue
    cls = venue_class(venue)
    assert cls.name == venue.value
    assert cls is venue_class(venue.module)
    assert cls.rest_path == urlsplit(venue.rest_root).path  # the sim serves the real root


@pytest.mark.parametrize("venue", ALL)
def test_secmaster_sync(venue: Venue) -> None:
    assert (PKG / "secmaster" / "sync" / f"{SYNC_FOR[venue]}.py").is_file()
    assert SYNC_FOR[venue] in RUNNERS
    api = SecmasterSettings.load({}).api(venue.value)
    assert api.base_url == venue.rest_root


@pytest.mark.parametrize("venue", ALL)
def test_fixtures_and_golden_test(venue: Venue) -> None:
    folder = ROOT / "tests" / "fixtures" / venue.module
    raw = [p for p in folder.glob("ws_*.jsonl") if not p.name.endswith(".expected.jsonl")]
    assert raw and (folder / "metadata.json").is_file()
    for p in raw:
        assert p.with_name(p.stem + ".expected.jsonl").is_file(), p
    assert (ROOT / "tests" / "venues" / f"test_golden_{venue.module}.py").is_file()


@pytest.mark.parametrize("venue", ALL)
def test_benches(venue: Venue) -> None:
    assert frames(venue, 3) and frames(venue, 3) == frames(venue.value, 3)  # Python benches
    assert f'"{venue.module}"' in (ROOT / "benches" / "rust" / "core.rs").read_text()


@pytest.mark.parametrize("venue", ALL)
def test_archive_and_dq_facts(venue: Venue) -> None:
    assert "book" in BOOK_KINDS[venue] and all(BOOK_KINDS[venue])
    assert isinstance(CONSECUTIVE[venue], bool) and isinstance(UNIT_PRICED[venue], bool)
    # ssmd dq secmaster: what trades, what is still open, what a listed row needs, its ids
    assert ACTIVE_STATUSES[venue] and all(ACTIVE_STATUSES[venue])
    assert all(OPEN_STATUSES[venue])
    assert f"SELECT '{venue.value}'" in REQUIRED_FIELDS[venue]
    exact, every = KNOWN_IDS[venue]
    assert "= ANY($1)" in exact and "$1" not in every


def test_unknown_venue_everywhere() -> None:
    for lookup in (connector_class, venue_class, venue_stream):
        with pytest.raises(ConfigError, match="unknown venue"):
            lookup("binance")
