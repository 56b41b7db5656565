"""Copy sample frames into per-channel golden fixtures and regenerate their expected outputs.

    python tools/update_fixtures.py [--split SAMPLES_DIR]

``--split SAMPLES_DIR`` (or ``SSMD_FIXTURE_SAMPLES=SAMPLES_DIR`` with ``--split``)
(re)copies the raw frames of a sample folder (one ``<venue>.jsonl`` per venue
and a ``README.md`` with a provenance table per file) into
``tests/fixtures/<venue>/ws_<channel>.jsonl`` with ``metadata.json`` (source,
line numbers, provenance codes, sha256). Without it only the expected files
``ws_<channel>.expected.jsonl`` are regenerated from the raw frames by the
current code (the golden tests write them, see ``tests/golden.py``); review them as a diff before committing (``make fixtures-update``).

Each expected line describes one input frame, processed in file order by one
processor (so sequence and book state carry across frames):
``{"frame": n, "messages": [...], "controls": [...], "records": [...]}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ssmd.types import Venue

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
#: module id -> the sample file of that venue
VENUE_FILES = {v.module: f"{v.module}.jsonl" for v in Venue}
RX_NS = 1_700_000_000_000_000_000

# Frames composed for ssmd's own tests (unknown-but-well-formed types and bad
# input); provenance "ssmd" in metadata.json.
EXTRA: dict[str, list[str]] = {
    "kalshi": [
        '{"type":"multivariate_lifecycle","sid":9,"seq":1,"msg":{"market_ticker":"KXMVE-26-A","event_type":"created"}}',
        '{"type":"ticker","sid":1,"msg":{"price_dollars":"0.5000"}}',
        '{"type":"trade","sid":2,"seq":1,"msg":{"trade_id":"t1","market_ticker":"KXA-26-B","yes_price_dollars":"0.10","count_fp":"1.00","taker_side":"no","ts":1',
    ],
    "kraken": [
        '{"channel":"ohlc","type":"update","data":[{"symbol":"BTC/USD","open":1.0}]}',
        '{"channel":"book","type":"update","data":[{"bids":[],"asks":[]}]}',
        "not json at all",
    ],
    "kraken_futures": [
        '{"feed":"ticker_lite","product_id":"PF_XBTUSD","bid":1.0,"ask":2.0}',
        '{"feed":"trade","uid":"u","side":"buy","seq":1,"time":1,"qty":1,"price":1}',
        '{"feed":"ticker","product_id":"PF_XBTUSD","bid":1.0,',
    ],
    "polymarket": [
        '{"event_type":"order_summary_v9","market":"0xabc","asset_id":"1","timestamp":"1"}',
        '[{"event_type":"best_bid_ask","asset_id":"1","best_bid":"0.1","best_ask":"0.2","timestamp":"5"},17]',
        '{"event_type":"book","asset_id":"1","bids":[',
    ],
}

# Price/qty precisions of the Kraken pairs in the fixtures (REST AssetPairs
# pair_decimals/lot_decimals; protocol sheet kraken.md section 4.4).
KRAKEN_PRECISIONS = {"BTC/USD": [1, 8], "MATIC/USD": [4, 8]}
# A few Kalshi series → category, as the secmaster would supply them.
KALSHI_CATEGORIES = {"KXBTCD": "Crypto", "INXD": "Financials", "FED": "Economics"}


def channel_of(venue: str, frame: str) -> str:
    """The fixture file a raw frame belongs to."""
    try:
        obj: Any = json.loads(frame)
    except ValueError:
        return "control" if frame.strip() in ("PONG", "PING") else "malformed"
    if isinstance(obj, list):
        return "array"
    if venue == "kalshi":
        t = obj.get("type", "")
        if t in ("subscribed", "ok", "unsubscribed", "error"):
            return "control"
        if t.startswith("orderbook"):
            return "orderbook"
        if t in ("market_lifecycle_v2", "event_lifecycle", "event_fee_update"):
            return "lifecycle"
        return str(t)
    if venue == "kraken":
        if "method" in obj or obj.get("channel") == "heartbeat":
            return "control"
        return str(obj.get("channel", "control"))
    if venue == "kraken_futures":
        if "event" in obj or obj.get("feed") == "heartbeat":
            return "control"
        feed = str(obj.get("feed", ""))
        return {"trade_snapshot": "trade", "book_snapshot": "book"}.get(feed, feed)
    t = obj.get("event_type")
    if t is None and ("bids" in obj or "asks" in obj):
        return "book"
    return str(t)


def provenance(readme: str, shared_name: str) -> dict[int, tuple[str, str]]:
    """Line → (code, note) from the fixtures README table of one file."""
    out: dict[int, tuple[str, str]] = {}
    section = re.split(r"^## ", readme, flags=re.M)
    for s in section:
        if not s.startswith(shared_name):
            continue
        for row in s.splitlines():
            m = re.match(r"\|\s*(\d+)\s*\|\s*(.*?)\s*\|\s*(\w)\s*\|\s*(.*?)\s*\|$", row)
            if m:
                out[int(m.group(1))] = (m.group(3), f"{m.group(2)}; {m.group(4)}".strip("; "))
    return out


def split(shared: Path) -> None:
    if not (shared / "README.md").is_file():
        sys.exit(f"update_fixtures: no sample folder at {shared} (README.md not found)")
    readme = (shared / "README.md").read_text()
    today = dt.date.today().isoformat()
    for venue, name in VENUE_FILES.items():
        src = shared / name
        raw = src.read_bytes()
        prov = provenance(readme, name)
        vdir = FIXTURES / venue
        vdir.mkdir(parents=True, exist_ok=True)
        for old in vdir.glob("ws_*.jsonl"):
            old.unlink()
        files: dict[str, list[dict[str, Any]]] = {}
        lines = raw.decode().splitlines()
        entries = [(i + 1, line, "shared") for i, line in enumerate(lines)]
        entries += [(0, line, "ssmd") for line in EXTRA[venue]]
        for lineno, line, origin in entries:
            ch = "unknown" if origin == "ssmd" else channel_of(venue, line)
            target = vdir / f"ws_{ch}.jsonl"
            with target.open("a") as f:
                f.write(line + "\n")
            if origin == "shared":
                code, note = prov.get(lineno, ("?", ""))
                files.setdefault(target.name, []).append(
                    {"source_line": lineno, "provenance": code, "note": note}
                )
            else:
                files.setdefault(target.name, []).append(
                    {"source_line": None, "provenance": "ssmd", "note": "composed for ssmd tests"}
                )
        meta: dict[str, Any] = {
            "source": f"{shared.resolve().parent.name}/{shared.resolve().name}/{name}",
            "source_sha256": hashlib.sha256(raw).hexdigest(),
            "copied": today,
            "provenance_codes": "see tests/fixtures/README.md",
            "files": {
                k: {"sha256": hashlib.sha256((vdir / k).read_bytes()).hexdigest(), "lines": v}
                for k, v in sorted(files.items())
            },
        }
        if venue == "kraken":
            meta["precisions"] = KRAKEN_PRECISIONS
            meta["stateful"] = ["ws_book.jsonl"]
        if venue == "kalshi":
            meta["categories"] = KALSHI_CATEGORIES
        (vdir / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")


def regenerate() -> None:
    """Rewrite every ``.expected.jsonl`` from the current code: the golden tests, run with
    ``SSMD_UPDATE_GOLDEN=1``, write what they would compare (``tests/golden.py``)."""
    env = {**os.environ, "SSMD_UPDATE_GOLDEN": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/venues"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    for venue in VENUE_FILES:
        for out in sorted((FIXTURES / venue).glob("ws_*.expected.jsonl")):
            print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--split",
        nargs="?",
        const=os.environ.get("SSMD_FIXTURE_SAMPLES", ""),
        default=None,
        metavar="SAMPLES_DIR",
        help="re-copy raw frames from this sample folder (default: $SSMD_FIXTURE_SAMPLES)",
    )
    args = ap.parse_args()
    if args.split is not None:
        if not args.split:
            ap.error("--split needs the sample folder: --split DIR or SSMD_FIXTURE_SAMPLES=DIR")
        split(Path(args.split))
    regenerate()


if __name__ == "__main__":
    main()
