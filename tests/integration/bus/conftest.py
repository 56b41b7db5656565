"""Fixtures for the bus tests: a private nats-server a test may restart (tests/nats_server.py;
a unique environment on the shared server, ``bus_env``, is in tests/conftest.py)."""

from __future__ import annotations

from nats_server import private_nats

__all__ = ["private_nats"]
