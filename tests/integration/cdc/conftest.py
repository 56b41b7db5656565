"""Fixtures for the CDC tests: a private nats-server a test may kill and start again
(tests/nats_server.py)."""

from __future__ import annotations

from nats_server import private_nats

__all__ = ["private_nats"]
