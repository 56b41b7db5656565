"""Golden fixtures for polymarket: routing, envelopes and normalized records."""

from __future__ import annotations

from pathlib import Path

import pytest

from golden import cases, check


@pytest.mark.parametrize(("venue", "path"), cases("polymarket"))
def test_golden(venue: str, path: Path) -> None:
    check(venue, path)
