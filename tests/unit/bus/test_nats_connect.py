"""``ssmd.bus.nats.connect``: a URL that cannot be right is a setting to fix, a server that
does not answer is a server that cannot be reached (the CLI's exit status 2 and 1)."""

from __future__ import annotations

import socket

import pytest

from ssmd.bus.nats import connect
from ssmd.errors import ConfigError, SinkError


@pytest.mark.parametrize(
    "url",
    [
        "nats://127.0.0.1:99999",
        "nats://127.0.0.1:notaport",
        "nats://127.0.0.1:0",
        "nats://:4222",
        "nats://127.0.0.1:4222,nats://127.0.0.1:x",
    ],
)
async def test_a_url_no_server_could_answer_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="bad NATS URL"):
        await connect(url, connect_timeout=1.0)


async def test_a_server_that_does_not_answer_is_a_sink_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"nats://user:secret@127.0.0.1:{port}"
    with pytest.raises(SinkError, match=f"cannot reach NATS at nats://127.0.0.1:{port}") as info:
        await connect(url, connect_timeout=1.0)
    assert not isinstance(info.value, ConfigError)
    assert "secret" not in str(info.value)
