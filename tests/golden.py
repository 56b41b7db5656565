"""The one definition of a golden fixture's expected output, and the golden check.

``tests/venues/test_golden_<venue>.py`` runs :func:`check` over
:func:`cases`. With ``SSMD_UPDATE_GOLDEN=1`` (``make fixtures-update``, which
runs ``tools/update_fixtures.py``) the check writes what :func:`run_fixture`
returns to ``ws_<channel>.expected.jsonl`` instead, for review as a diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ssmd.core import Processor
from ssmd.core import normalize_lines as normalize

FIXTURES = Path(__file__).resolve().parent / "fixtures"

RX_NS = 1_700_000_000_000_000_000
MESSAGE_KEYS = ("subject", "kind", "instrument", "class", "ts_ms", "seq", "dedupe_id", "msg_id")


def processor_for(venue: str, meta: dict[str, Any]) -> Processor:
    p = Processor(venue, "fixture", "prod")
    for symbol, (pp, qp) in meta.get("precisions", {}).items():
        p.set_precision(symbol, pp, qp)
    p.set_categories(meta.get("categories", {}))
    return p


def run_fixture(venue: str, path: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Process a fixture file frame by frame; one row per frame, then counters.

    The sample frames come from unrelated captures, so sequence and book state
    is reset before each frame, except in files listed under ``stateful`` in
    ``metadata.json`` (frames that continue each other, like the Kraken book).
    """
    p = processor_for(venue, meta)
    stateful = path.name in meta.get("stateful", [])
    rows: list[dict[str, Any]] = []
    for n, raw in enumerate(path.read_bytes().splitlines()):
        if not stateful:
            p.reset()
        batch = p.process([raw], RX_NS + n)
        messages = []
        for m in batch.messages():
            row = {k: m[k] for k in MESSAGE_KEYS}
            if m["class"] in ("data", "unknown"):
                # the venue's bytes are kept verbatim: the msg is a slice of the frame
                row["verbatim"] = m["msg"] in raw
            else:
                row["msg"] = json.loads(m["msg"])
            messages.append(row)
        records = [json.loads(line) for line in normalize(venue, [raw]).splitlines()]
        rows.append(
            {
                "frame": n + 1,
                "messages": messages,
                "controls": [k for k, _ in batch.controls],
                "resyncs": [list(r) for r in batch.resyncs],
                "records": records,
            }
        )
    rows.append({"counters": p.counters()})
    return rows


def cases(venue: str) -> list[Any]:
    """One parameter per raw fixture file of ``venue`` (module id)."""
    vdir = FIXTURES / venue
    files = sorted(p for p in vdir.glob("ws_*.jsonl") if not p.name.endswith(".expected.jsonl"))
    return [pytest.param(venue, p, id=p.stem) for p in files]


def check(venue: str, path: Path) -> None:
    """The fixture's output equals its reviewed ``.expected.jsonl`` (or, updating, becomes it)."""
    meta = json.loads((path.parent / "metadata.json").read_text())
    expected_path = path.with_name(path.stem + ".expected.jsonl")
    rows = run_fixture(venue, path, meta)
    if os.environ.get("SSMD_UPDATE_GOLDEN") == "1":
        expected_path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        return
    assert expected_path.exists(), f"missing {expected_path.name}: run make fixtures-update"
    expected = [json.loads(line) for line in expected_path.read_text().splitlines()]
    actual = json.loads(json.dumps(rows, sort_keys=True))
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a == e
    # every data message keeps the venue's bytes verbatim
    for row in actual[:-1]:
        for m in row["messages"]:
            if m["class"] in ("data", "unknown"):
                assert m["verbatim"], m
