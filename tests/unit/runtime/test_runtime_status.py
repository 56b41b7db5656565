"""Status lines: envelope shape, subjects, token mapping identical to the core's."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ssmd.core import Processor, subject_token
from ssmd.runtime.status import status_line, status_subject


def test_status_line_shape() -> None:
    line = status_line(
        "stall", "kraken-h-1", status_subject("prod", "kraken", "BTC/USD"), {"scope": "x"}, rx=5
    )
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    env = orjson.loads(line)
    assert list(env) == ["rx", "conn", "subj", "msg"]
    assert env == {
        "rx": 5,
        "conn": "kraken-h-1",
        "subj": "prod.kraken.json.status.BTC_USD",
        "msg": {"ssmd": "stall", "scope": "x"},
    }
    assert status_subject("prod", "kalshi", "A.B", "crypto") == "prod.kalshi.crypto.json.status.A_B"


@given(st.text(min_size=1, max_size=200))
def test_subject_token_matches_the_core(instrument: str) -> None:
    # the core puts a Kraken symbol into its data subject; a status line about
    # that symbol must land on the same token, whatever the symbol
    frame = orjson.dumps(
        {"channel": "ticker", "type": "update", "data": [{"symbol": instrument, "bid": 1}]}
    )
    batch = Processor("kraken", "c").process([frame], 1)
    ((subj, _, count, _),) = batch.groups()
    assert count == 1
    assert subj == f"prod.kraken.json.ticker.{subject_token(instrument)}"
    status = status_subject("prod", "kraken", instrument)
    assert status.rsplit(".", 1)[1] == subj.rsplit(".", 1)[1]
