"""Golden fixtures for kraken_futures: routing, envelopes and normalized records."""

from __future__ import annotations

from pathlib import Path

import pytest

from golden import cases, check


@pytest.mark.parametrize(("venue", "path"), cases("kraken_futures"))
def test_golden(venue: str, path: Path) -> None:
    check(venue, path)
