"""Status lines: envelope shape, subjects, token mapping identical to the core's."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ssmd.core import Processor
from ssmd.runtime.status import status_line, status_subject, subject_token


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


@given(st.text(min_size=1, max_size=20))
def test_subject_token_matches_the_core(instrument: str) -> None:
    # the core puts a Kraken symbol into its data subject; ours must be the same token
    frame = orjson.dumps(
        {"channel": "ticker", "type": "update", "data": [{"symbol": instrument, "bid": 1}]}
    )
    batch = Processor("kraken", "c").process([frame], 1)
    subj = batch.groups()[0][0]
    if ".json.ticker." in subj:
        assert subj.split(".json.ticker.", 1)[1] == subject_token(instrument)
