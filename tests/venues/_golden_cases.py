"""Shared parametrization for the per-venue golden tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from golden import run_fixture

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def cases(venue: str) -> list[Any]:
    vdir = FIXTURES / venue
    files = sorted(p for p in vdir.glob("ws_*.jsonl") if not p.name.endswith(".expected.jsonl"))
    return [pytest.param(venue, p, id=p.stem) for p in files]


def check(venue: str, path: Path) -> None:
    meta = json.loads((path.parent / "metadata.json").read_text())
    expected_path = path.with_name(path.stem + ".expected.jsonl")
    assert expected_path.exists(), f"missing {expected_path.name}: run make fixtures-update"
    expected = [json.loads(line) for line in expected_path.read_text().splitlines()]
    actual = json.loads(json.dumps(run_fixture(venue, path, meta), sort_keys=True))
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a == e
    # every data message keeps the venue's bytes verbatim
    for row in actual[:-1]:
        for m in row["messages"]:
            if m["class"] in ("data", "unknown"):
                assert m["verbatim"], m
