"""Writing the instruments into Redis: the atomic bootstrap and fenced updates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["FIELDS", "CacheStore", "index_key", "inst_key", "meta_key", "status_key"]

#: the ``instruments`` view's columns, as hash fields
FIELDS = (
    "venue",
    "instrument_id",
    "symbol",
    "title",
    "status",
    "kind",
    "category",
    "tick_size",
    "opens_at",
    "closes_at",
    "updated_at",
)


def inst_key(venue: str, instrument: str, prefix: str = "ssmd") -> str:
    return f"{prefix}:{venue}:inst:{instrument}"


def index_key(venue: str, prefix: str = "ssmd") -> str:
    return f"{prefix}:{venue}:index"


def status_key(venue: str, status: str, prefix: str = "ssmd") -> str:
    return f"{prefix}:{venue}:status:{status}"


def meta_key(prefix: str = "ssmd") -> str:
    """The cache's own record: the LSN it was loaded at, when, and how many rows."""
    return f"{prefix}:cache:meta"


def text(value: Any) -> str | None:
    """A view value as the hash stores it (``None``: the field is absent)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _mapping(row: Mapping[str, Any], lsn: int, n: int) -> dict[str, str]:
    out = {f: t for f in FIELDS if (t := text(row.get(f))) is not None}
    out["lsn"] = f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
    out["n"] = str(n)
    return out


# A stored (lsn, n) later than the change's: the change is older and ignored.
_LATER = """
local function later(cur, nhi, nlo, nn)
  if not cur then return false end
  local slash = string.find(cur[1], '/')
  local hi = tonumber(string.sub(cur[1], 1, slash - 1), 16)
  local lo = tonumber(string.sub(cur[1], slash + 1), 16)
  local n = tonumber(cur[2])
  return hi > nhi or (hi == nhi and (lo > nlo or (lo == nlo and n > nn)))
end
"""

# Writes one instrument's new state unless the key already holds a later change.
# KEYS: inst, index; ARGV: lsn hi, lsn lo, n, status ("": none), status-set prefix,
# instrument id, then field, value pairs (value "": the field is removed)
_UPSERT = (
    _LATER
    + """
local cur = redis.call('HMGET', KEYS[1], 'lsn', 'n', 'status')
if cur[1] and later(cur, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])) then
  return 0
end
local sets, dels = {}, {}
for i = 7, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    table.insert(dels, ARGV[i])
  else
    table.insert(sets, ARGV[i]); table.insert(sets, ARGV[i + 1])
  end
end
if #dels > 0 then redis.call('HDEL', KEYS[1], unpack(dels)) end
redis.call('HSET', KEYS[1], unpack(sets))
redis.call('SADD', KEYS[2], ARGV[6])
if cur[3] and cur[3] ~= ARGV[4] then redis.call('SREM', ARGV[5] .. cur[3], ARGV[6]) end
if ARGV[4] ~= '' then redis.call('SADD', ARGV[5] .. ARGV[4], ARGV[6]) end
return 1
"""
)

# Removes one instrument unless the key holds a later change.
# KEYS: inst, index; ARGV: lsn hi, lsn lo, n, status-set prefix, instrument id
_DELETE = (
    _LATER
    + """
local cur = redis.call('HMGET', KEYS[1], 'lsn', 'n', 'status')
if not cur[1] then return 0 end
if later(cur, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[5])
if cur[3] then redis.call('SREM', ARGV[4] .. cur[3], ARGV[5]) end
return 1
"""
)


# Staging: ARGV is key, field count, fields and values, key, count, … (one row each).
_LOAD = """
local i, n = 1, 0
while i <= #ARGV do
  local key, count = ARGV[i], tonumber(ARGV[i + 1])
  redis.call('HSET', key, unpack(ARGV, i + 2, i + 1 + 2 * count))
  i = i + 2 + 2 * count
  n = n + 1
end
return n
"""

# The swap: ARGV is stage prefix, prefix, the number D of old keys to delete, those D keys,
# then the live keys to rename from staging, then meta key, lsn, rows, loaded_at (last 4).
_SWAP = """
local stage, prefix, d = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 4, 3 + d do redis.call('DEL', ARGV[i]) end
for i = 4 + d, #ARGV - 4 do
  local live = ARGV[i]
  redis.call('RENAME', stage .. string.sub(live, #prefix + 1), live)
end
redis.call('HSET', ARGV[#ARGV - 3], 'lsn', ARGV[#ARGV - 2], 'rows', ARGV[#ARGV - 1],
  'loaded_at', ARGV[#ARGV])
return 1
"""


def _b(v: str) -> bytes:
    return v.encode()


def _resp(parts: list[bytes]) -> bytes:
    """One command in the Redis protocol (RESP2)."""
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n" % len(p))
        out.append(p)
        out.append(b"\r\n")
    return b"".join(out)


class CacheStore:
    """The cache's Redis side (a ``redis.asyncio.Redis`` client)."""

    def __init__(self, redis: Any, prefix: str = "ssmd") -> None:
        self.r = redis
        self.prefix = prefix
        self._upsert = redis.register_script(_UPSERT)
        self._delete = redis.register_script(_DELETE)
        self._loaded_scripts = False
        self._load_sha = b""
        self._swap_sha = b""

    # -- the bootstrap ---------------------------------------------------

    async def bootstrap(
        self,
        rows: Iterable[Mapping[str, Any]],
        lsn: int,
        *,
        batch: int = 2000,
        loaded_at: int | None = None,
    ) -> int:
        """Load ``rows`` (the whole view) stamped (``lsn``, 0) and swap them in at once.

        The meta key records ``loaded_at`` (the server's WAL position the view
        was read at; ``lsn`` when not given) with the row count and the time.

        Readers see the old cache until the swap, then the new one: the rows
        go to staging keys (``{prefix}:boot:…``, ``batch`` rows per server-side
        script call, all calls written to the socket before any reply is read),
        and one script renames them over the live keys and deletes the live
        keys the view no longer has, atomically.
        """
        p = self.prefix
        stage = f"{p}:boot"
        await self._script_ready()
        await self._drop(f"{stage}:*")  # a load that died half-way
        live_keys: list[bytes] = []
        sets: dict[str, set[str]] = {}
        commands: list[bytes] = []
        args: list[bytes] = []
        count = 0
        at = lsn if loaded_at is None else loaded_at
        at_text = f"{at >> 32:X}/{at & 0xFFFFFFFF:X}"
        for row in rows:
            venue, inst = str(row["venue"]), str(row["instrument_id"])
            live = inst_key(venue, inst, p)
            fields = _mapping(row, lsn, 0)
            args.append(_b(stage + live[len(p) :]))
            args.append(str(len(fields)).encode())
            for k, v in fields.items():
                args.append(k.encode())
                args.append(_b(v))
            live_keys.append(_b(live))
            sets.setdefault(index_key(venue, p), set()).add(inst)
            status = text(row.get("status"))
            if status is not None:
                sets.setdefault(status_key(venue, status, p), set()).add(inst)
            count += 1
            if count % batch == 0:
                commands.append(_resp([b"EVALSHA", self._load_sha, b"0", *args]))
                args = []
        if args:
            commands.append(_resp([b"EVALSHA", self._load_sha, b"0", *args]))
        for key, members in sets.items():
            for chunk in _chunks(sorted(members), 5000):
                commands.append(
                    _resp([b"SADD", _b(stage + key[len(p) :]), *(_b(m) for m in chunk)])
                )
        await self._pipeline(commands)
        old = await self._live_keys()
        keep = {k.decode() for k in live_keys} | set(sets)
        swap = [b"EVALSHA", self._swap_sha, b"0", _b(stage), _b(p), str(len(old - keep)).encode()]
        swap += [_b(k) for k in sorted(old - keep)]
        swap += live_keys + [_b(k) for k in sets]
        swap += [
            _b(meta_key(p)),
            _b(at_text),
            str(count).encode(),
            _b(dt.datetime.now(dt.timezone.utc).isoformat()),
        ]
        await self._pipeline([_resp(swap)])
        return count

    async def _live_keys(self) -> set[str]:
        """Every live key of the cache: the instruments of the index sets, and the sets."""
        p = self.prefix
        sets = [
            k
            for pattern in (f"{p}:*:index", f"{p}:*:status:*")
            async for k in self._scan(pattern)
            if not k.startswith(f"{p}:boot:")
        ]
        out = set(sets)
        for key in sets:
            if key.endswith(":index"):
                venue = key[len(p) + 1 : -len(":index")]
                out.update(inst_key(venue, _s(m), p) for m in await self.r.smembers(key))
        return out

    async def _script_ready(self) -> None:
        if not self._loaded_scripts:
            self._load_sha = _b(await self.r.script_load(_LOAD))
            self._swap_sha = _b(await self.r.script_load(_SWAP))
            self._loaded_scripts = True

    async def _pipeline(self, commands: list[bytes]) -> None:
        """Write every command, then read every reply (an error reply is raised)."""
        pool = self.r.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(b"".join(commands))
            errors = []
            for _ in commands:
                try:
                    await conn.read_response(timeout=60.0)
                except Exception as exc:  # a reply error: read the rest, then raise
                    errors.append(exc)
            if errors:
                raise errors[0]
        finally:
            await pool.release(conn)

    async def _drop(self, pattern: str) -> None:
        keys = [k async for k in self._scan(pattern)]
        for chunk in _chunks(keys, 1000):
            await self.r.delete(*chunk)

    async def _scan(self, pattern: str) -> Any:
        async for key in self.r.scan_iter(match=pattern, count=5000):
            yield key.decode() if isinstance(key, bytes) else key

    async def loaded(self) -> bool:
        """Whether the cache was bootstrapped (gone after ``FLUSHDB``)."""
        return bool(await self.r.exists(meta_key(self.prefix)))

    # -- changes ---------------------------------------------------------

    async def upsert(self, row: Mapping[str, Any], lsn: int, n: int) -> bool:
        """Write one instrument's current row, fenced by (``lsn``, ``n``); False if older."""
        venue, inst = str(row["venue"]), str(row["instrument_id"])
        p = self.prefix
        status = text(row.get("status")) or ""
        args: list[Any] = [lsn >> 32, lsn & 0xFFFFFFFF, n, status, f"{p}:{venue}:status:", inst]
        for k, v in _mapping(row, lsn, n).items():
            args += [k, v]
        for f in FIELDS:
            if text(row.get(f)) is None:
                args += [f, ""]
        keys = [inst_key(venue, inst, p), index_key(venue, p)]
        return bool(await self._upsert(keys=keys, args=args))

    async def delete(self, venue: str, instrument: str, lsn: int, n: int) -> bool:
        p = self.prefix
        keys = [inst_key(venue, instrument, p), index_key(venue, p)]
        args = [lsn >> 32, lsn & 0xFFFFFFFF, n, f"{p}:{venue}:status:", instrument]
        return bool(await self._delete(keys=keys, args=args))

    async def get(self, venue: str, instrument: str) -> dict[str, str]:
        raw = await self.r.hgetall(inst_key(venue, instrument, self.prefix))
        return {_s(k): _s(v) for k, v in raw.items()}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
