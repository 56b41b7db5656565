"""wal2json format 2 rows -> changes, as the CDC service publishes them."""

from __future__ import annotations

import orjson
import pytest

from ssmd.cdc.publish import fit
from ssmd.cdc.wal2json import Change, Decoder, format_lsn, parse_lsn, plugin_options
from ssmd.errors import ParseError

B = '{"action":"B","timestamp":"2026-12-04 23:39:03.477283+00","lsn":"0/1924768","nextlsn":"0/1924798"}'
I1 = (
    '{"action":"I","timestamp":"2026-12-04 23:39:03.477283+00","lsn":"0/1924608","schema":"public",'
    '"table":"markets","columns":[{"name":"ticker","type":"text","value":"M1"},'
    '{"name":"tick_size","type":"numeric","value":0.0100},'
    '{"name":"raw","type":"jsonb","value":"{\\"a\\": [1, 2]}"},'
    '{"name":"n","type":"integer","value":7}],"pk":[{"name":"ticker","type":"text"}]}'
)
U1 = (
    '{"action":"U","lsn":"0/1924798","schema":"public","table":"markets",'
    '"columns":[{"name":"ticker","type":"text","value":"M1"},{"name":"status","type":"text","value":"closed"}],'
    '"identity":[{"name":"ticker","type":"text","value":"M1"}],"pk":[{"name":"ticker","type":"text"}]}'
)
D1 = (
    '{"action":"D","lsn":"0/19247E0","schema":"public","table":"markets",'
    '"identity":[{"name":"ticker","type":"text","value":"M2"}],"pk":[{"name":"ticker","type":"text"}]}'
)
C = '{"action":"C","timestamp":"2026-12-04 23:39:03.477283+00","lsn":"0/1924768","nextlsn":"0/1924798"}'


def test_lsn_text_round_trips() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    assert parse_lsn(5) == 5 and format_lsn(0) == "0/0"
    for bad in ("", "16B374D848", "x/1"):
        with pytest.raises(ParseError):
            parse_lsn(bad)


def test_a_transaction_becomes_changes_with_the_commit_lsn() -> None:
    d = Decoder()
    assert d.feed(B) is None
    out = [d.feed(x) for x in (I1, U1, D1)]
    assert d.feed(C) == "commit" and d.end_lsn == parse_lsn("0/1924798")
    ins, upd, dele = out
    assert isinstance(ins, Change) and isinstance(upd, Change) and isinstance(dele, Change)
    assert [(c.op, c.n, c.msg_id, c.subject) for c in out] == [
        ("insert", 0, "0/1924768:0", "cdc.markets.insert"),
        ("update", 1, "0/1924768:1", "cdc.markets.update"),
        ("delete", 2, "0/1924768:2", "cdc.markets.delete"),
    ]
    # numerics keep their digits, json columns are objects, the commit time is ns
    assert ins.new == {"ticker": "M1", "tick_size": "0.0100", "raw": {"a": [1, 2]}, "n": 7}
    assert ins.key == {"ticker": "M1"} and ins.ts == 1796427543477283000
    assert upd.key == {"ticker": "M1"} and upd.old == {"ticker": "M1"}
    assert dele.key == {"ticker": "M2"} and dele.new == {} and dele.old == {"ticker": "M2"}
    body = orjson.loads(ins.body())
    assert list(body) == ["lsn", "n", "table", "op", "ts", "key", "new", "old"]
    assert body["lsn"] == "0/1924768" and body["new"]["tick_size"] == "0.0100"


def test_the_next_transaction_counts_from_zero_and_heartbeats_are_boundaries() -> None:
    d = Decoder()
    d.feed(B), d.feed(I1), d.feed(C)
    d.feed('{"action":"B","lsn":"0/2000000","nextlsn":"0/2000030"}')
    assert isinstance(c := d.feed(U1), Change) and c.n == 0 and c.msg_id == "0/2000000:0"
    d.feed('{"action":"C","lsn":"0/2000000","nextlsn":"0/2000030"}')
    assert d.feed('{"action":"B","lsn":"0/3000000","nextlsn":"0/3000040"}') is None
    msg = '{"action":"M","lsn":"0/3000000","transactional":true,"prefix":"ssmd_cdc","content":"1"}'
    assert d.feed(msg) is None and d.messages == 1
    assert d.feed('{"action":"C","lsn":"0/3000000","nextlsn":"0/3000040"}') == "commit"
    assert d.end_lsn == parse_lsn("0/3000040")


def test_bad_rows_are_parse_errors() -> None:
    with pytest.raises(ParseError, match="not JSON"):
        Decoder().feed("{nope")
    with pytest.raises(ParseError, match="action 'T'"):
        Decoder().feed('{"action":"T"}')


def test_plugin_options_qualify_tables() -> None:
    opts = plugin_options(("markets", "other.t"))
    assert opts[opts.index("add-tables") + 1] == "public.markets,other.t"
    assert opts[opts.index("format-version") + 1] == "2"


def test_a_body_over_the_limit_truncates_only_its_big_values() -> None:
    big = {"ticker": "M1", "raw": {"blob": "x" * 200_000}}
    c = Change(1, 0, "markets", "insert", None, {"ticker": "M1"}, big)
    body, cut = fit(c, 100_000)
    assert cut == ["raw"] and len(body) < 100_000
    new = orjson.loads(body)["new"]
    assert new["ticker"] == "M1" and new["raw"]["ssmd"] == "truncated"
    assert fit(c, 0)[1] == [] and fit(c, 10**7)[1] == []
