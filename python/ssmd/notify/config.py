"""The notifier's destinations file (TOML or YAML): where fires go, and which.

```toml
[retry]                      # optional; every destination may override these
max_attempts = 30            # then the fire goes to deadletter.notify
backoff = "1s"               # first delay; doubles up to backoff_max (full jitter)
backoff_max = "30s"
timeout = "10s"              # per request

[[destinations]]
name = "phone"
server = "https://ntfy.sh"
topic = "my-ssmd-alerts"
token_env = "NTFY_TOKEN"     # the access token: $NTFY_TOKEN, or the file $NTFY_TOKEN_FILE names
priority = "high"            # min, low, default, high, max or 1-5
tags = ["chart_with_upwards_trend"]
cooldown = "15m"             # per instrument, on the fires' receive times
title = "{signal} {instrument}"
message = "{venue}: ${payload.dollar_volume} in the window"
signals = ["volume-1m-*"]    # shell patterns on the signal id (default: every signal)
match = [{ field = "payload.dollar_volume", op = "gte", value = 2000000 }]
```

A fire goes to a destination when its signal matches one of ``signals``
and every ``match`` rule holds. Rule fields are the fire's
(``signal``, ``instrument``, ``venue``, ``ts``, ``rx``, ``source_seq``) or
dotted paths into its payload (``payload.dollar_volume``); a rule on a field
the fire does not have does not hold. Secrets never live in the file: a
``token`` key is refused.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ssmd.errors import ConfigError
from ssmd.settings import parse_duration

__all__ = [
    "OPS",
    "PRIORITIES",
    "Destination",
    "NotifyConfig",
    "Retry",
    "Rule",
    "field_value",
    "load_config",
    "parse_config",
    "render",
]

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "regex")
PRIORITIES = {"min": 1, "low": 2, "default": 3, "high": 4, "max": 5, "urgent": 5}

_MISSING = object()
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}")

DEFAULT_TITLE = "{signal}: {instrument}"
DEFAULT_MESSAGE = "{venue} {instrument} fired {signal} at {time}\n{payload}"


def field_value(fire: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``fire`` (a private sentinel when absent)."""
    cur: Any = fire
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _number(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float, Decimal)):
        try:
            return Decimal(str(v))
        except InvalidOperation:
            return None
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


@dataclass(frozen=True)
class Rule:
    """``field op value``; compiled at load time."""

    field: str
    op: str
    value: Any
    pattern: re.Pattern[str] | None = None

    def holds(self, fire: Mapping[str, Any]) -> bool:
        got = field_value(fire, self.field)
        if got is _MISSING:
            return False
        op = self.op
        if op in ("eq", "ne"):
            a, b = _number(got), _number(self.value)
            same = a == b if a is not None and b is not None else got == self.value
            return same if op == "eq" else not same
        if op in ("gt", "gte", "lt", "lte"):
            a, b = _number(got), _number(self.value)
            if a is None or b is None:
                return False
            return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
        if op == "contains":
            if isinstance(got, str):
                return str(self.value) in got
            if isinstance(got, (list, tuple)):
                return self.value in got
            return False
        assert self.pattern is not None
        return isinstance(got, (str, int, float)) and self.pattern.search(str(got)) is not None


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 30
    backoff: float = 1.0
    backoff_max: float = 30.0
    timeout: float = 10.0


@dataclass(frozen=True)
class Destination:
    """One ntfy topic on one server, with its rules."""

    name: str
    server: str
    topic: str
    token: str | None = field(default=None, repr=False)
    priority: int | None = None
    tags: tuple[str, ...] = ()
    cooldown: float = 0.0
    title: str = DEFAULT_TITLE
    message: str = DEFAULT_MESSAGE
    click: str | None = None
    markdown: bool = False
    signals: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    retry: Retry = Retry()

    def matches(self, fire: Mapping[str, Any]) -> bool:
        sig = fire.get("signal")
        if self.signals and not (
            isinstance(sig, str) and any(fnmatch.fnmatchcase(sig, p) for p in self.signals)
        ):
            return False
        return all(r.holds(fire) for r in self.rules)

    def body(self, fire: Mapping[str, Any]) -> dict[str, Any]:
        """ntfy's JSON publish body for ``fire``."""
        out: dict[str, Any] = {
            "topic": self.topic,
            "title": render(self.title, fire),
            "message": render(self.message, fire),
        }
        if self.priority is not None:
            out["priority"] = self.priority
        if self.tags:
            out["tags"] = list(self.tags)
        if self.click:
            out["click"] = render(self.click, fire)
        if self.markdown:
            out["markdown"] = True
        return out


@dataclass(frozen=True)
class NotifyConfig:
    destinations: tuple[Destination, ...]
    path: Path | None = None

    def matching(self, fire: Mapping[str, Any]) -> list[Destination]:
        return [d for d in self.destinations if d.matches(fire)]


def render(template: str, fire: Mapping[str, Any]) -> str:
    """``{field}`` and ``{payload.key}`` replaced from ``fire``; ``{time}`` is ``ts`` in UTC;
    ``{payload}`` alone is ``key=value`` pairs. Unknown fields become empty."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "time":
            return _iso(fire.get("ts"))
        v = field_value(fire, name)
        if v is _MISSING or v is None:
            return ""
        if isinstance(v, Mapping):
            return " ".join(f"{k}={_text(x)}" for k, x in v.items())
        return _text(v)

    return _PLACEHOLDER.sub(one, template)


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def _iso(ts: Any) -> str:
    import datetime as dt

    if not isinstance(ts, int) or isinstance(ts, bool):
        return ""
    t = dt.datetime.fromtimestamp(ts / 1e9, dt.timezone.utc)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


# -- loading ---------------------------------------------------------------------------


def load_config(path: str | Path, environ: Mapping[str, str]) -> NotifyConfig:
    """Read and check a destinations file; :class:`ConfigError` (one line, naming the
    file) when it cannot be used. ``environ`` supplies the tokens."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such destinations file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        doc = _yaml(p, text)
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(doc, environ, where=str(p), path=p)


def _yaml(p: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            f"{p}: reading YAML needs PyYAML (pip install pyyaml), or write the file as TOML"
        ) from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}: not valid YAML{at}: {problem}") from None


_TOP = {"retry", "destinations"}
_DEST = {
    "name",
    "server",
    "topic",
    "token_env",
    "priority",
    "tags",
    "cooldown",
    "title",
    "message",
    "click",
    "markdown",
    "signals",
    "match",
    "retry",
    "kind",
}
_RETRY = {"max_attempts", "backoff", "backoff_max", "timeout"}


def parse_config(
    doc: Any, environ: Mapping[str, str], *, where: str = "config", path: Path | None = None
) -> NotifyConfig:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: expected a table with [[destinations]]")
    _keys(doc, _TOP, where)
    retry = _retry(doc.get("retry", {}), Retry(), f"{where}: [retry]")
    raw = doc.get("destinations")
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or not raw:
        raise ConfigError(f"{where}: no destinations (add a [[destinations]] table)")
    out: list[Destination] = []
    seen: set[str] = set()
    for i, d in enumerate(raw):
        ctx = f"{where}: destination {i + 1}"
        if not isinstance(d, Mapping):
            raise ConfigError(f"{ctx}: expected a table")
        name = d.get("name", f"d{i + 1}")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"{ctx}: name {name!r}: 1-64 letters, digits, _ or -")
        ctx = f"{where}: destination {name!r}"
        if name in seen:
            raise ConfigError(f"{ctx}: the name is used twice")
        seen.add(name)
        out.append(_destination(d, name, retry, environ, ctx))
    return NotifyConfig(tuple(out), path)


def _keys(doc: Mapping[str, Any], allowed: set[str], ctx: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if "token" in unknown:
        raise ConfigError(
            f"{ctx}: a token does not belong in the file: name its environment variable with"
            " token_env"
        )
    if unknown:
        raise ConfigError(
            f"{ctx}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed - {'kind'}))})"
        )


def _retry(raw: Any, base: Retry, ctx: str) -> Retry:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{ctx}: expected a table")
    _keys(raw, _RETRY, ctx)
    vals: dict[str, Any] = {
        "max_attempts": base.max_attempts,
        "backoff": base.backoff,
        "backoff_max": base.backoff_max,
        "timeout": base.timeout,
    }
    if "max_attempts" in raw:
        n = raw["max_attempts"]
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1000:
            raise ConfigError(f"{ctx}: max_attempts must be a whole number from 1 to 1000")
        vals["max_attempts"] = n
    for k in ("backoff", "backoff_max", "timeout"):
        if k in raw:
            try:
                vals[k] = parse_duration(raw[k], k)
            except ConfigError as exc:
                raise ConfigError(f"{ctx}: {exc}") from None
            if vals[k] <= 0:
                raise ConfigError(f"{ctx}: {k} must be more than 0")
    if vals["backoff_max"] < vals["backoff"]:
        raise ConfigError(f"{ctx}: backoff_max is less than backoff")
    return Retry(**vals)


def _destination(
    d: Mapping[str, Any], name: str, retry: Retry, environ: Mapping[str, str], ctx: str
) -> Destination:
    _keys(d, _DEST, ctx)
    kind = d.get("kind", "ntfy")
    if kind != "ntfy":
        raise ConfigError(f"{ctx}: kind {kind!r} is not supported (ntfy)")
    server = d.get("server", "https://ntfy.sh")
    if not isinstance(server, str) or not re.match(r"https?://[^/\s]+", server):
        raise ConfigError(f"{ctx}: server {server!r} is not an http:// or https:// URL")
    topic = d.get("topic")
    if not isinstance(topic, str) or not re.fullmatch(r"[-_A-Za-z0-9]{1,64}", topic):
        raise ConfigError(f"{ctx}: topic must be 1-64 letters, digits, _ or - (got {topic!r})")
    token = _token(d.get("token_env"), environ, ctx)
    priority = _priority(d.get("priority"), ctx)
    tags = _strings(d.get("tags", ()), "tags", ctx)
    signals = _strings(d.get("signals", ()), "signals", ctx)
    cooldown = 0.0
    if "cooldown" in d:
        try:
            cooldown = parse_duration(d["cooldown"], "cooldown")
        except ConfigError as exc:
            raise ConfigError(f"{ctx}: {exc}") from None
        if cooldown < 0:
            raise ConfigError(f"{ctx}: cooldown must not be negative")
    texts = {}
    for k, default in (("title", DEFAULT_TITLE), ("message", DEFAULT_MESSAGE), ("click", None)):
        v = d.get(k, default)
        if v is not None and not isinstance(v, str):
            raise ConfigError(f"{ctx}: {k} must be text")
        texts[k] = v
    markdown = d.get("markdown", False)
    if not isinstance(markdown, bool):
        raise ConfigError(f"{ctx}: markdown must be true or false")
    rules = _rules(d.get("match", ()), ctx)
    return Destination(
        name=name,
        server=server.rstrip("/"),
        topic=topic,
        token=token,
        priority=priority,
        tags=tags,
        cooldown=cooldown,
        title=texts["title"] or "",
        message=texts["message"] or "",
        click=texts["click"],
        markdown=markdown,
        signals=signals,
        rules=rules,
        retry=_retry(d.get("retry", {}), retry, f"{ctx}: retry"),
    )


def _token(var: Any, environ: Mapping[str, str], ctx: str) -> str | None:
    if var is None:
        return None
    if not isinstance(var, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        raise ConfigError(f"{ctx}: token_env must name an environment variable")
    if environ.get(var):
        return environ[var].strip()
    file_var = f"{var}_FILE"
    if environ.get(file_var):
        try:
            tok = Path(environ[file_var]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{ctx}: cannot read the token file ${file_var}: {exc}") from None
        if tok:
            return tok
        raise ConfigError(f"{ctx}: the token file ${file_var} is empty")
    raise ConfigError(f"{ctx}: token_env: neither ${var} nor ${file_var} is set")


def _priority(v: Any, ctx: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, str) and v.lower() in PRIORITIES:
        return PRIORITIES[v.lower()]
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5:
        return v
    raise ConfigError(f"{ctx}: priority {v!r}: use 1-5 or min, low, default, high, max")


def _strings(v: Any, key: str, ctx: str) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, Sequence) or not all(isinstance(x, str) and x for x in v):
        raise ConfigError(f"{ctx}: {key} must be a list of text")
    return tuple(v)


def _rules(raw: Any, ctx: str) -> tuple[Rule, ...]:
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError(f"{ctx}: match must be a list of {{field, op, value}}")
    out = []
    for j, r in enumerate(raw):
        rctx = f"{ctx}: match rule {j + 1}"
        if not isinstance(r, Mapping):
            raise ConfigError(f"{rctx}: expected {{field, op, value}}")
        _keys(r, {"field", "op", "value"}, rctx)
        fld, op = r.get("field"), r.get("op")
        if not isinstance(fld, str) or not fld:
            raise ConfigError(f"{rctx}: field is missing")
        if op not in OPS:
            raise ConfigError(f"{rctx}: op {op!r} is not one of {', '.join(OPS)}")
        if "value" not in r:
            raise ConfigError(f"{rctx}: value is missing")
        value = r["value"]
        pattern = None
        if op in ("gt", "gte", "lt", "lte") and _number(value) is None:
            raise ConfigError(f"{rctx}: {op} needs a number (got {value!r})")
        if op == "regex":
            if not isinstance(value, str):
                raise ConfigError(f"{rctx}: regex needs a text pattern")
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise ConfigError(f"{rctx}: bad regex {value!r}: {exc}") from None
        out.append(Rule(fld, op, value, pattern))
    return tuple(out)
