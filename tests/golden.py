"""The one definition of a golden fixture's expected output.

Used by the per-venue golden tests and by ``tools/update_fixtures.py``, which
writes what this returns to ``ws_<channel>.expected.jsonl`` for review.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ssmd.core import Processor
from ssmd.core import normalize_lines as normalize

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
