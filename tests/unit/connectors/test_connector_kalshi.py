"""Kalshi: key loading (PKCS#8/PKCS#1, one-line errors), RSA-PSS signing, commands."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ssmd.connectors.kalshi import load_private_key, sign_headers
from ssmd.connectors.registry import create
from ssmd.errors import ConfigError


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_loads_pkcs8_and_pkcs1(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, fmt: object) -> None:
    p = tmp_path / "k.pem"
    p.write_bytes(_pem(rsa_key, fmt))  # type: ignore[arg-type]
    assert (
        load_private_key(p).public_key().public_numbers() == rsa_key.public_key().public_numbers()
    )


def test_signature_verifies_with_the_public_key(rsa_key: rsa.RSAPrivateKey) -> None:
    h = sign_headers("key-id", rsa_key, "get", "/trade-api/ws/v2?x=1", ts_ms=1703123456789)
    assert h["KALSHI-ACCESS-KEY"] == "key-id"
    assert h["KALSHI-ACCESS-TIMESTAMP"] == "1703123456789"
    sig = base64.b64decode(h["KALSHI-ACCESS-SIGNATURE"], validate=True)
    assert len(h["KALSHI-ACCESS-SIGNATURE"]) == 344  # 256 bytes, padded base64
    rsa_key.public_key().verify(  # raises InvalidSignature when wrong
        sig,
        b"1703123456789GET/trade-api/ws/v2",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def _bad(tmp_path: Path, data: bytes | None) -> str:
    p = tmp_path / "bad.pem"
    if data is not None:
        p.write_bytes(data)
    return str(p)


def test_bad_keys_are_one_line_config_errors(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    enc = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    cases = {
        None: "KALSHI_PRIVATE_KEY_PATH is not set",
        str(tmp_path / "missing.pem"): "cannot read private key",
        _bad(tmp_path, b"not a key"): "not a PEM RSA private key",
    }
    for path, want in cases.items():
        with pytest.raises(ConfigError, match=want) as info:
            load_private_key(path)
        assert "\n" not in str(info.value)
    (tmp_path / "ec.pem").write_bytes(ec_pem)
    with pytest.raises(ConfigError, match="not an RSA private key"):
        load_private_key(tmp_path / "ec.pem")
    (tmp_path / "enc.pem").write_bytes(enc)
    with pytest.raises(ConfigError, match="encrypted"):
        load_private_key(tmp_path / "enc.pem")


def test_connector_needs_key_id_and_key(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALSHI_API_KEY", "from-the-environment")  # never read by the library
    with pytest.raises(ConfigError, match="KALSHI_API_KEY"):
        create("kalshi")
    p = tmp_path / "k.pem"
    p.write_bytes(_pem(rsa_key, serialization.PrivateFormat.PKCS8))
    c = create("kalshi", {"api_key": "kid", "private_key_path": str(p)})
    assert "kid" not in repr(c.config) and str(p) not in repr(c.config)
    h = c.auth_headers("wss://h/trade-api/ws/v2")
    assert set(h) == {"KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP", "KALSHI-ACCESS-SIGNATURE"}


@pytest.fixture
def session(tmp_path: Path, rsa_key: rsa.RSAPrivateKey):  # type: ignore[no-untyped-def]
    p = tmp_path / "k.pem"
    p.write_bytes(_pem(rsa_key, serialization.PrivateFormat.PKCS8))
    c = create(
        "kalshi",
        {
            "api_key": "kid",
            "private_key_path": str(p),
            "channels": ("ticker", "orderbook_delta", "market_lifecycle_v2"),
        },
    )
    return c.new_session(0)


def _cmds(msgs: list[bytes]) -> list[dict]:  # type: ignore[type-arg]
    return [orjson.loads(m) for m in msgs]


def test_subscribe_then_update_with_sids(session) -> None:  # type: ignore[no-untyped-def]
    (life,) = _cmds(session.on_open())
    assert life["params"] == {"channels": ["market_lifecycle_v2"]}
    first = _cmds(session.subscribe(["A", "B"]))
    assert [c["params"]["channels"] for c in first] == [["ticker"], ["orderbook_delta"]]
    assert first[0]["params"]["send_initial_snapshot"] is True
    assert first[1]["params"]["market_tickers"] == ["A", "B"]
    ids = [c["id"] for c in [life, *first]]
    assert ids == [1, 2, 3]
    # a change while the subscribe awaits its reply is queued...
    assert session.subscribe(["C"]) == []
    assert session.unsubscribe(["A"]) == []
    # ...and sent on the reply, on that sid
    evs, out = session.on_control(
        "subscribed", b'{"id":2,"type":"subscribed","msg":{"channel":"ticker","sid":7}}'
    )
    assert evs[0].kind == "subscribed"
    upd = _cmds(out)
    assert [(u["params"]["action"], u["params"]["market_tickers"]) for u in upd] == [
        ("add_markets", ["C"]),
        ("delete_markets", ["A"]),
    ]
    assert all(u["params"]["sids"] == [7] for u in upd)
    session.on_control(
        "subscribed", b'{"id":3,"type":"subscribed","msg":{"channel":"orderbook_delta","sid":8}}'
    )
    (snap,) = _cmds(session.resync(["B"]))
    assert snap["params"] == {"sids": [8], "market_tickers": ["B"], "action": "get_snapshot"}
    # removing the last markets ends the sid instead of leaving an empty filter
    out = _cmds(session.unsubscribe(["B", "C"]))
    assert {c["cmd"] for c in out} == {"unsubscribe"}


def test_terminal_error_resubscribes_that_channel(session) -> None:  # type: ignore[no-untyped-def]
    session.subscribe(["A"])
    session.on_control(
        "subscribed", b'{"id":1,"type":"subscribed","msg":{"channel":"ticker","sid":4}}'
    )
    evs, out = session.on_control(
        "error", b'{"id":9,"sid":4,"type":"error","msg":{"code":25,"msg":"buffer overflow"}}'
    )
    assert evs[0].kind == "resubscribed" and evs[0].instruments == ("A",)
    (cmd,) = _cmds(out)
    assert cmd["cmd"] == "subscribe" and cmd["params"]["market_tickers"] == ["A"]
    evs, out = session.on_control(
        "error", b'{"id":99,"type":"error","msg":{"code":7,"msg":"Unknown subscription ID"}}'
    )
    assert evs[0].kind == "error" and out == []
