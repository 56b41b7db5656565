"""JetStream stream administration: create or update the streams of :mod:`ssmd.bus.streams`, read their state."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ssmd.bus.streams import StreamSpec, ensure_result
from ssmd.errors import ConfigError

__all__ = ["api_error", "ensure_streams", "key_value", "stream_info"]


log = logging.getLogger("ssmd.bus")


async def key_value(js: Any, bucket: str, description: str, ttl: float | None = None) -> Any:
    """The JetStream key-value bucket ``bucket``, created (one value per key, entries
    expiring after ``ttl`` seconds if given) when it does not exist yet."""
    from nats.js.api import KeyValueConfig
    from nats.js.errors import BucketNotFoundError

    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        cfg = KeyValueConfig(bucket=bucket, description=description, history=1, ttl=ttl)
        return await js.create_key_value(cfg)


async def ensure_streams(js: Any, specs: Sequence[StreamSpec]) -> list[dict[str, Any]]:
    """Create missing streams and update changed ones; returns one result per stream."""
    from nats.js.errors import NotFoundError

    results = []
    for spec in specs:
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            info = None
        try:
            if info is None:
                await js.add_stream(spec.config())
                results.append(ensure_result("created", spec))
                log.info("stream %s created", spec.name)
                continue
            changes = spec.differences(info.config)
            if not changes:
                results.append(ensure_result("unchanged", spec))
                continue
            await js.update_stream(spec.config())
            results.append(ensure_result("updated", spec, changes))
            log.info("stream %s updated: %s", spec.name, "; ".join(changes))
        except Exception as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"stream {spec.name}: {api_error(exc)}") from exc
    return results


def api_error(exc: Exception) -> str:
    desc = getattr(exc, "description", None)
    code = getattr(exc, "err_code", None)
    if desc:
        return f"{desc} (error {code})" if code else str(desc)
    return str(exc) or type(exc).__name__


async def stream_info(js: Any, name: str) -> Any | None:
    """The server's ``StreamInfo``, or None when the stream does not exist."""
    from nats.js.errors import NotFoundError

    try:
        return await js.stream_info(name)
    except NotFoundError:
        return None
