"""The nats-py internals ``ssmd.bus.nats`` relies on, checked without a server.

The archiver's inbox and the publisher's acknowledgements skip nats-py's
``Msg`` objects: ``direct_delivery`` wraps ``Client._process_msg``, which
nats-py's protocol parser calls for every ``MSG``/``HMSG``, and registers
subscriptions by their ``Subscription._id``. A nats-py release that renames
or reshapes either fails here, in the unit tier, before it fails in
production; ``pyproject.toml`` bounds nats-py below its next, untested release.
"""

from __future__ import annotations

import inspect
from importlib.metadata import requires, version

from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.protocol.parser import Parser
from packaging.requirements import Requirement
from packaging.version import Version

from ssmd.bus.nats.direct import ack_stream_seq, direct_delivery

ACK = b"$JS.ACK.PROD_KRAKEN.archiver.1.42.42.1700000000000000000.0"


def test_the_dependency_is_bounded_and_the_version_inside_it() -> None:
    reqs = [Requirement(r) for r in requires("ssmd") or () if r.startswith("nats-py")]
    assert reqs  # the [bus] extra (and [all], [test] that include it)
    for req in reqs:
        assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), req
        assert Version(version("nats-py")) in req.specifier


def test_process_msg_has_the_shape_direct_delivery_wraps() -> None:
    fn = Client._process_msg
    assert inspect.iscoroutinefunction(fn)
    assert list(inspect.signature(fn).parameters) == [
        "self",
        "sid",
        "subject",
        "reply",
        "data",
        "headers",
    ]


def test_a_subscription_keeps_its_sid_in_id() -> None:
    nc = Client()
    sub = Subscription(nc, 7, "inbox.x")
    assert sub._id == 7


async def test_the_parser_hands_messages_of_a_registered_sid_to_the_handler() -> None:
    nc = Client()
    got: list[tuple[bytes, bytes, bytes, bytes | None]] = []
    assert direct_delivery(nc, 7, lambda *m: got.append(m))
    parser = Parser(nc)
    await parser.parse(b"MSG inbox.1 7 " + ACK + b" 5\r\nhello\r\n")
    head = b"NATS/1.0\r\nNats-Msg-Id: c:1\r\n\r\n"
    await parser.parse(b"HMSG inbox.2 7 %d %d\r\n%sworld\r\n" % (len(head), len(head) + 5, head))
    # a message split over two reads arrives whole
    await parser.parse(b"MSG inbox.3 7 2\r\no")
    await parser.parse(b"k\r\n")
    assert got == [
        (b"inbox.1", ACK, b"hello", None),
        (b"inbox.2", b"", b"world", head),
        (b"inbox.3", b"", b"ok", None),
    ]
    assert ack_stream_seq(got[0][1]) == 42
    assert nc.stats["in_msgs"] == 0  # nats-py's own path never saw them


async def test_other_sids_and_unregistered_ones_take_nats_py_s_own_path() -> None:
    nc = Client()
    got: list[bytes] = []
    assert direct_delivery(nc, 7, lambda subject, reply, data, headers: got.append(data))
    parser = Parser(nc)
    await parser.parse(b"MSG other 8 3\r\nabc\r\n")  # no such subscription: counted, dropped
    assert got == [] and nc.stats["in_msgs"] == 1
    assert direct_delivery(nc, 7, None)
    await parser.parse(b"MSG inbox 7 3\r\nxyz\r\n")
    assert got == [] and nc.stats["in_msgs"] == 2
