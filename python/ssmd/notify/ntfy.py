"""One publish to ntfy, and what to do about its answer.

The body is ntfy's JSON publish form (``POST {server}/`` with the topic in
the body), so titles and tags travel as UTF-8 JSON rather than in HTTP
headers, which are Latin-1 only. The token, when there is one, is sent as
``Authorization: Bearer …`` and never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ssmd.errors import NON_RETRYABLE_STATUS, parse_retry_after
from ssmd.notify.config import Destination

__all__ = ["Outcome", "publish"]


@dataclass(frozen=True)
class Outcome:
    """``ok``; or a reason, whether another attempt may help, and a ``Retry-After``."""

    ok: bool
    reason: str = ""
    retry: bool = False
    retry_after: float | None = None


async def publish(client: Any, dest: Destination, fire: Mapping[str, Any]) -> Outcome:
    """Send ``fire`` to ``dest`` with the ``httpx.AsyncClient`` ``client``."""
    import httpx

    headers = {"Content-Type": "application/json"}
    if dest.token:
        headers["Authorization"] = f"Bearer {dest.token}"
    body = orjson.dumps(dest.body(fire))
    try:
        resp = await client.post(
            dest.server + "/", content=body, headers=headers, timeout=dest.retry.timeout
        )
    except httpx.TimeoutException:
        return Outcome(False, f"no answer within {dest.retry.timeout:g} s", retry=True)
    except httpx.HTTPError as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}"[:200], retry=True)
    status = resp.status_code
    if 200 <= status < 300:
        return Outcome(True)
    reason = f"HTTP {status}: {_excerpt(resp.content)}"
    if status == 429 or status >= 500 or status == 408:
        return Outcome(
            False,
            reason,
            retry=True,
            retry_after=parse_retry_after(resp.headers.get("retry-after")),
        )
    if status in NON_RETRYABLE_STATUS or 400 <= status < 500:
        return Outcome(False, reason, retry=False)
    return Outcome(False, reason, retry=True)


def _excerpt(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            return str(doc["error"])[:160]
    except orjson.JSONDecodeError:
        pass
    return body[:160].decode("utf-8", "replace").strip() or "(empty)"
