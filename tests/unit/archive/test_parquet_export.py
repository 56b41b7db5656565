"""``ssmd archive export --format parquet``: schemas, exact values, order, atomic re-runs,
status lines, damage and ``--verify`` (docs/data.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive_damage import day_dir
from archive_helpers import SEC, T0, envelope
from golden import FIXTURES, processor_for
from ssmd._core import arrow_schema
from ssmd.archive import ArchiveWriter
from ssmd.archive.parquet import KINDS, export_parquet, need_data, verify_parquet
from ssmd.core import normalize_lines
from ssmd.errors import ConfigError

VENUES = {"kalshi": "kalshi", "kraken": "kraken", "kraken_futures": "kraken-futures"}
VENUES["polymarket"] = "polymarket"
PROVENANCE = ("rx", "conn", "stream_seq", "stream_index", "record_index")

#: composed frames at the edges of what the venues send (marked composed: not captured)
EXTREMES = {
    "kalshi": [
        # 38 decimals: the widest NO price whose YES ask (1 - p) the core derives exactly
        '{"type":"orderbook_snapshot","sid":9,"seq":1,"msg":{"market_ticker":"KX-EDGE",'
        '"yes_dollars_fp":[["0.0001","1.00"]],'
        '"no_dollars_fp":[["0.12345678901234567890123456789012345678","99999999999.99"]]}}',
        # legacy integer cents and counts at the i64 edge
        '{"type":"trade","sid":3,"seq":7,"msg":{"trade_id":"t-edge","market_ticker":"KX-EDGE",'
        '"yes_price":99,"count":9223372036854775807,"taker_side":"no","ts":1707667200}}',
    ],
    "kraken": [
        '{"channel":"trade","type":"update","data":[{"symbol":"SHIB/USD","side":"sell",'
        '"price":0.00000001,"qty":99999999999.99999999,"ord_type":"market","trade_id":1,'
        '"timestamp":"2024-03-01T00:00:00.000001Z"},{"symbol":"BTC/USD","side":"buy",'
        '"price":123456789012.1,"qty":1E-8,"ord_type":"limit","trade_id":2,'
        '"timestamp":"2024-03-01T00:00:00.5Z"}]}'
    ],
    "polymarket": [
        '{"event_type":"last_trade_price","asset_id":"7","market":"0x1","price":".001",'
        '"side":"BUY","size":"0.000001","timestamp":"1709251200000"}'
    ],
}


def _frames(module: str) -> list[bytes]:
    frames = []
    for path in sorted((FIXTURES / module).glob("ws_*.jsonl")):
        if not path.name.endswith(".expected.jsonl"):
            frames.extend(path.read_bytes().splitlines())
    return frames + [f.encode() for f in EXTREMES.get(module, [])]


def fixture_archive(root: Path) -> dict[str, list[bytes]]:
    """Every fixture frame of every venue through the core into ``root``, one ms apart."""
    archived: dict[str, list[bytes]] = {}
    for module, venue in VENUES.items():
        meta = json.loads((FIXTURES / module / "metadata.json").read_text())
        p = processor_for(venue, meta)
        lines: list[bytes] = []
        for n, frame in enumerate(_frames(module)):
            p.reset()  # unrelated captures: no sequence state across frames
            lines.extend(p.process([frame], T0 + n * 1_000_000).lines().splitlines())
        with ArchiveWriter(root, venue, "fx", fsync=False) as w:
            w.write(b"".join(line + b"\n" for line in lines))
        archived[venue] = lines
    return archived


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[bytes]], Any]:
    root = tmp_path_factory.mktemp("fx")
    archived = fixture_archive(root)
    result = export_parquet(root)
    return root, archived, result


def _expected(venue: str, lines: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """The core's JSONL records of every archived venue message, per kind, in rx order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        env = json.loads(line)
        if isinstance(env["msg"], dict) and "ssmd" in env["msg"]:
            continue  # ssmd's own lines: checked in their own test
        msg = line[line.index(b',"msg":') + 7 : -1]  # the venue's bytes, verbatim
        for rec in normalize_lines(venue, [msg]).splitlines():
            r = json.loads(rec)
            out.setdefault(r.pop("type"), []).append(r)
    return out


def _as_record(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row in the shape of the core's JSONL record (exact text only)."""
    r = {k: v for k, v in row.items() if k not in PROVENANCE and not k.endswith("_f64")}
    if r["ts"] is not None:
        r["ts"] = int(r["ts"].timestamp() * 1000) if hasattr(r["ts"], "timestamp") else r["ts"]
    for key in ("bids", "asks"):
        if key in r:
            r[key] = [[lv["price"], lv["size"]] for lv in r[key]]
    if "changes" in r:
        r["changes"] = [[c["side"], c["price"], c["size"]] for c in r["changes"]]
    if "detail" in r:
        r["detail"] = None if r["detail"] is None else json.loads(r["detail"])
    r.pop("origin", None)
    return r


def _rows(path: Path) -> list[dict[str, Any]]:
    t = pq.read_table(path)
    # ts as ms integers (exact), rx as ns integers
    cols = {n: t.column(n) for n in t.column_names}
    cols["ts"] = cols["ts"].cast(pa.int64())
    cols["rx"] = cols["rx"].cast(pa.int64())
    return pa.table(cols).to_pylist()


def test_every_fixture_record_is_exported_exactly(
    exported: tuple[Path, dict[str, list[bytes]], Any],
) -> None:
    root, archived, result = exported
    assert result.complete
    for venue, lines in archived.items():
        expected = _expected(venue, lines)
        assert expected, venue
        for kind in KINDS:
            path = root / "parquet" / venue / kind / "date=2024-03-01" / "part-0.parquet"
            want = expected.get(kind, [])
            if kind == "status":
                rows = [r for r in _rows(path) if r["origin"] == "venue"] if path.exists() else []
            else:
                assert path.exists() == bool(want), (venue, kind)
                rows = _rows(path) if want else []
            got = [_as_record(kind, r) for r in rows]
            assert got == want, (venue, kind)


def test_schemas_are_explicit_and_floats_are_views_of_the_text(
    exported: tuple[Path, dict[str, list[bytes]], Any],
) -> None:
    """The files hold the exact text only; ``ssmd.read(views=True)`` adds each float64
    view, from the Parquet export and from the JSONL archive alike, equal to
    ``float(text)``."""
    import ssmd

    root, _, _ = exported
    files = sorted((root / "parquet").rglob("*.parquet"))
    assert files
    extremes = set()
    for path in files:
        kind, venue = path.parent.parent.name, path.parent.parent.parent.name
        schema = pq.read_schema(path)
        assert schema.remove_metadata().equals(pa.schema(arrow_schema(kind, views=False))), path
        assert not [n for n in schema.names if n.endswith("_f64")]
        frame = ssmd.read(kind, venue, dir=root, views=True)
        want = pl.from_arrow(pa.schema(arrow_schema(kind)).empty_table())
        assert isinstance(want, pl.DataFrame)
        assert frame.schema == want.schema, path
        from_jsonl = ssmd.read(kind, venue, dir=root, parquet_dir=root / "none", views=True)
        assert frame.equals(from_jsonl), path
        assert frame.height == pq.read_metadata(path).num_rows
        for row in frame.drop("rx").to_dicts():
            pairs = [(row, k) for k in row if k.endswith("_f64")]
            for key in ("bids", "asks", "changes"):
                pairs += [(lv, k) for lv in row.get(key) or [] for k in lv if k.endswith("_f64")]
            for obj, k in pairs:
                text = obj[k[: -len("_f64")]]
                if text is None:
                    assert obj[k] is None
                else:
                    assert obj[k] == float(text), (path, text)
                    extremes.add(text)
    # the composed edge values are there, digit for digit
    for text in (
        "0.87654321098765432109876543210987654322",  # 1 - p, 38 decimals
        "0.00000001",
        "99999999999.99999999",
        "1E-8",
        "9223372036854775807.00",  # a count of 2**63 - 1 as fixed-point text
        ".001",
        "0.000001",
    ):
        assert text in extremes, text


def test_rows_in_rx_order_across_writers_with_provenance(tmp_path: Path) -> None:
    root = tmp_path / "a"
    trade = (
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
        '"price":%d.5,"qty":1,"ord_type":"limit","trade_id":%d,"timestamp":"2024-03-01T00:00:00Z"}]}'
    )
    wa = ArchiveWriter(root, "kraken", "a", fsync=False)
    wb = ArchiveWriter(root, "kraken", "b", fsync=False)
    for i in range(400):
        line = envelope(
            T0 + i * SEC, "prod.kraken.json.trade.BTC_USD", trade % (i, i), seq=i + 1, conn="k-1"
        )
        (wa if i % 3 else wb).write(line)
    wa.close()
    wb.close()
    result = export_parquet(root, batch_rows=64)
    assert [f.rows for f in result.files] == [400]
    f = result.files[0]
    assert f.seq == (0, 399) and f.stream_seq == (1, 400)
    t = pq.read_table(f.path)
    assert t.column("rx").cast(pa.int64()).to_pylist() == [T0 + i * SEC for i in range(400)]
    assert t.column("trade_id").to_pylist() == [str(i) for i in range(400)]
    assert set(t.column("conn").to_pylist()) == {"k-1"}
    assert pq.ParquetFile(f.path).metadata.num_row_groups == 7  # 400 rows in batches of 64
    footer = pq.ParquetFile(f.path).metadata.metadata
    assert footer[b"ssmd.schema_version"] == b"2"
    assert json.loads(footer[b"ssmd.lines"]) == {"trade": 400}
    assert json.loads(footer[b"ssmd.seq"]) == [0, 399]
    assert [s["file"] for s in json.loads(footer[b"ssmd.source_files"])] == [
        "kraken/2024-03-01/0000-a.jsonl.gz",
        "kraken/2024-03-01/0000-b.jsonl.gz",
    ]


def _encodings(path: Path) -> dict[str, set[str]]:
    meta = pq.ParquetFile(path).metadata
    out: dict[str, set[str]] = {}
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(g).column(c)
            out.setdefault(col.path_in_schema, set()).update(col.encodings)
    return out


@pytest.mark.parametrize("distinct", [False, True])
def test_prices_are_a_dictionary_until_it_outgrows_its_page(tmp_path: Path, distinct: bool) -> None:
    """Prices repeat: dictionary pages. A column of all-different prices, more than
    pyarrow's 1 MiB dictionary holds (it then writes plain pages), is exact too."""
    root = tmp_path / "a"
    trade = (
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
        '"price":%s,"qty":0.%08d,"ord_type":"limit","trade_id":%d,'
        '"timestamp":"2024-03-01T00:00:00Z"}]}'
    )
    n = 120_000 if distinct else 5_000
    prices = [f"{1_000_000 + i}.{i % 10}" if distinct else f"6700{i % 7}.5" for i in range(n)]
    with ArchiveWriter(root, "kraken", "a", fsync=False) as w:
        for i, price in enumerate(prices):
            w.write(envelope(T0 + i, "prod.kraken.json.trade.BTC_USD", trade % (price, i, i)))
    (f,) = export_parquet(root).files
    enc = _encodings(f.path)
    assert "RLE_DICTIONARY" in enc["price"]
    if not distinct:  # a few prices: the dictionary holds them all
        dictionary = pq.ParquetFile(f.path).metadata.row_group(0).column(5)
        assert dictionary.path_in_schema == "price"
        assert dictionary.total_uncompressed_size < 5_000  # plain text: 55 000 bytes
    assert "RLE_DICTIONARY" not in enc["size"] and "RLE_DICTIONARY" not in enc["trade_id"]
    assert enc["rx"] >= {"DELTA_BINARY_PACKED"}
    t = pq.read_table(f.path)
    assert t.column("price").to_pylist() == prices
    assert t.column("size").to_pylist()[-1] == f"0.{n - 1:08d}"


def test_every_kind_s_prices_are_dictionary_encoded(
    exported: tuple[Path, dict[str, list[bytes]], Any],
) -> None:
    """Quotes' bid, ask and last, and the prices of book levels, as trades' price."""
    _, _, result = exported
    want = {
        "trade": ["price"],
        "quote": ["bid", "ask", "last"],
        "book_snapshot": ["bids.list.element.price", "asks.list.element.price"],
        "book_delta": ["changes.list.element.price"],
    }
    seen = set()
    for f in result.files:
        enc = _encodings(f.path)
        for col in want.get(f.kind, []):
            assert "RLE_DICTIONARY" in enc[col], (f.path, col)
            seen.add(f.kind)
        if f.kind in want:  # sizes seldom repeat: plain
            sizes = [c for c in enc if c.split(".")[-1] in ("size", "bid_size", "ask_size")]
            assert sizes and not any("RLE_DICTIONARY" in enc[c] for c in sizes), f.path
    assert seen == set(want)


def _digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_rerun_gives_identical_files_and_replaces_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "a"
    fixture_archive(root)
    out = tmp_path / "out"
    export_parquet(root, out)
    first = _digests(out)
    assert all(name.endswith("part-0.parquet") for name in first)  # no temporary files left
    export_parquet(root, out)
    assert _digests(out) == first
    # a kind the day no longer has goes; the others are replaced whole
    stale = out / "kraken" / "lifecycle" / "date=2024-03-01" / "part-0.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    result = export_parquet(root, out, venues=["kraken"])
    assert stale in result.days[0].removed and not stale.exists()
    assert _digests(out) == first


def test_status_lines_are_exported_with_the_holes(tmp_path: Path) -> None:
    root = tmp_path / "a"
    gap = '{"ssmd":"gap","sid":1,"expected":5,"got":9,"missing":4,"instrument":"KX-1"}'
    with ArchiveWriter(root, "kalshi", "w", fsync=False) as w:
        w.write(envelope(T0, "prod.kalshi.json.status.kalshi-1", gap, seq=1))
        w.write(envelope(T0 + 1, "prod.kalshi.json.status.KX-1", '{"ssmd":"resync"}', seq=2))
        w.write(
            envelope(
                T0 + 2,
                "prod.kalshi.json.malformed.kalshi-1",
                '{"ssmd":"malformed","error":"bad JSON","raw":"{"}',
                seq=3,
            )
        )
    result = export_parquet(root)
    (f,) = result.files
    assert f.kind == "status"
    rows = pq.read_table(f.path).drop_columns(["rx"]).to_pylist()
    assert [(r["origin"], r["status"], r["instrument"]) for r in rows] == [
        ("ssmd", "gap", "kalshi-1"),
        ("ssmd", "resync", "KX-1"),
        ("ssmd", "malformed", "kalshi-1"),
    ]
    assert json.loads(rows[0]["detail"]) == json.loads(gap)


def test_damaged_source_is_a_warning_naming_the_file_and_not_complete(tmp_path: Path) -> None:
    root = tmp_path / "a"
    trade = '{"channel":"trade","type":"update","data":[{"symbol":"X/Y","price":1,"qty":1}]}'
    with ArchiveWriter(root, "kraken", "w", fsync=False, max_buffer_bytes=1) as w:
        for i in range(50):
            w.write(envelope(T0 + i, "prod.kraken.json.trade.X_Y", trade))
            w.flush()
    (path,) = day_dir(root).glob("*.jsonl.gz")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one member no longer decodes
    path.write_bytes(bytes(data))
    warnings: list[Any] = []
    result = export_parquet(root, on_warning=warnings.append)
    assert not result.complete
    assert len(warnings) == 1 and str(path) in str(warnings[0])
    (f,) = result.files
    assert 0 < f.rows < 50
    footer = pq.ParquetFile(f.path).metadata.metadata
    assert footer[b"ssmd.complete"] == b"false"
    assert str(path) in footer[b"ssmd.warnings"].decode()
    r = _ssmd("archive", "export", "--dir", str(root))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"ssmd: warning: {path}" in err
    assert "not complete" in err.splitlines()[-1]


def test_verify_reconciles_and_finds_mismatches(tmp_path: Path) -> None:
    root = tmp_path / "a"
    fixture_archive(root)
    export_parquet(root)
    checked = verify_parquet(root)
    assert checked.ok and len(checked.files) >= 10
    r = _ssmd("archive", "export", "--dir", str(root), "--verify-only")
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout.decode()

    # a file cut short: rows and last seq differ
    path = root / "parquet" / "kalshi" / "trade" / "date=2024-03-01" / "part-0.parquet"
    pf = pq.ParquetFile(path)
    t = pf.read()
    with pq.ParquetWriter(path, t.schema) as w:
        w.write_table(t.slice(0, t.num_rows - 1))
    # the source grew since the export: its footer names other sizes
    with ArchiveWriter(root, "kraken", "late", fsync=False) as w:
        w.write(envelope(T0, "prod.kraken.json.status.x", '{"ssmd":"stall"}'))
    checked = verify_parquet(root)
    messages = [str(i) for i in checked.issues]
    assert any("kalshi 2024-03-01 trade: rows: source" in m for m in messages), messages
    assert any("kraken 2024-03-01 status: rows: source" in m for m in messages), messages
    assert any("stale" in m and "0000-late.jsonl.gz" in m for m in messages), messages
    r = _ssmd("archive", "export", "--dir", str(root), "--verify-only", "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["verify"]["ok"] is False and doc["verify"]["issues"]


def _ssmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full = {k: v for k, v in os.environ.items() if k != "SSMD_ARCHIVE_DIR"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args], capture_output=True, env=full, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "book"], "unknown kind 'book' (the normalized kinds: trade, quote"),
        (["--venue", "binance"], "'binance' is not one of"),
        (["--from", "2030-01-01"], "no archive files in"),
        (["--from", "2024-03-01T10:00"], "bad --from '2024-03-01T10:00': expected a date"),
        (["--format", "csv"], "bad --format 'csv': only parquet"),
        (["--out", "FILE"], "is not a directory"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    root = tmp_path / "a"
    with ArchiveWriter(root, "kraken", "w", fsync=False) as w:
        w.write(envelope(T0, "prod.kraken.json.status.x", '{"ssmd":"stall"}'))
    (tmp_path / "FILE").write_text("x")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    r = _ssmd("archive", "export", "--dir", str(root), *args)
    assert r.returncode == 2
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_missing_extra_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "a"
    with ArchiveWriter(root, "kraken", "w", fsync=False) as w:
        w.write(envelope(T0, "prod.kraken.json.status.x", '{"ssmd":"stall"}'))
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "pyarrow.py").write_text("raise ImportError('blocked for the test')\n")
    r = _ssmd("archive", "export", "--dir", str(root), env={"PYTHONPATH": str(blocker)})
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "ssmd: error: ssmd archive export needs the [data] extra (pyarrow, polars):"
        " pip install 'ssmd[data]' (from a checkout: pip install '.[data]')"
    )
    # the library's own check says the same (ssmd.read, export_parquet)
    with pytest.raises(ConfigError, match=r"Parquet export needs the \[data\] extra"):
        need_data("ssmd_no_such_module_for_test", "Parquet export")


def test_dates_select_days(tmp_path: Path) -> None:
    root = tmp_path / "a"
    with ArchiveWriter(root, "kraken", "w", fsync=False) as w:
        for d in range(3):
            w.write(
                envelope(T0 + d * 86_400 * SEC, "prod.kraken.json.status.x", '{"ssmd":"stall"}')
            )
    result = export_parquet(root, date_from="2024-03-02", date_to="2024-03-03")
    assert [d.date for d in result.days] == ["2024-03-02", "2024-03-03"]
    assert dt.date(2024, 3, 3).isoformat() in str(result.files[-1].path)
