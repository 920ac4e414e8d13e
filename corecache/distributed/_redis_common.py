"""The Redis side of the distributed layer that both styles share (no I/O
here): the Lua scripts, the key-name helpers of a cluster, the error
classes redis-py raises (the same for redis.asyncio), and the circuit
breaker.  See redis_store.py (generated from aio/redis_store.py) for the
key layout and what each script does."""
from __future__ import annotations

import hashlib
import threading
from time import monotonic
from typing import Any, Callable, Dict, Optional, Tuple

from ..exceptions import StoreUnavailable

# seconds a write-behind queue operation waits for a migration of its slot
MIGRATION_WAIT = 5.0

try:
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.crc import key_slot
    from redis.exceptions import (AskError, ClusterDownError, ClusterError, NoScriptError,
                                  RedisClusterException, RedisError, TryAgainError)
    from redis.exceptions import ConnectionError as _RConnectionError
    from redis.exceptions import TimeoutError as _RTimeoutError
    _UNAVAILABLE: Tuple[type, ...] = (_RConnectionError, _RTimeoutError, ClusterDownError,
                                      RedisClusterException, OSError)
    _ERRORS: Tuple[type, ...] = (RedisError, RedisClusterException, OSError)
    # a slot being migrated: MOVED/ASK not followed (a node-direct call), or
    # TRYAGAIN, or redis-py giving up on them ("TTL exhausted")
    _MIGRATING: Tuple[type, ...] = (AskError, TryAgainError)
    HAVE_REDIS = True
except ImportError:  # the redis extra is not installed
    HAVE_REDIS = False


def _migrating(exc: BaseException) -> bool:
    return isinstance(exc, _MIGRATING) or (
        isinstance(exc, ClusterError) and "TTL exhausted" in str(exc))


class _Script:
    __slots__ = ("name", "source", "sha")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


# ---- values: writes cancel the fills in flight -------------------------------

# KEYS: value keys, then their lock keys. ARGV: ttl ms (0: none), channel
# ('': none), message, values...
_PUT = _Script("put", """
local n = #KEYS / 2
local ttl = tonumber(ARGV[1])
for i = 1, n do
  if ttl > 0 then
    redis.call('SET', KEYS[i], ARGV[i + 3], 'PX', ttl)
  else
    redis.call('SET', KEYS[i], ARGV[i + 3])
  end
  redis.call('SET', KEYS[n + i], 'p', 'XX', 'KEEPTTL')
end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n
""")

# KEYS: value keys, then their lock keys. ARGV: channel ('': none), message
_REMOVE = _Script("remove", """
local n = #KEYS / 2
local found = 0
for i = 1, n do
  found = found + redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[n + i], 'p', 'XX', 'KEEPTTL')
end
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return found
""")

# ---- fill locks ---------------------------------------------------------------

# KEYS: lock keys. ARGV: token, lease ms.  A lock held by this token is
# taken again (a retried request); poisoned or failed locks are free.
_LOCK = _Script("lock", """
local held = 'h:' .. ARGV[1]
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if cur and string.sub(cur, 1, 2) == 'h:' and cur ~= held then
    out[i] = 0
  else
    redis.call('SET', KEYS[i], held, 'PX', ARGV[2])
    out[i] = 1
  end
end
return out
""")

# KEYS: lock keys. ARGV: lease ms, tokens...
_RENEW = _Script("renew", """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == 'h:' .. ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return 1
""")

# KEYS: lock keys. ARGV: token, failure text ('': none), its ttl ms
_UNLOCK = _Script("unlock", """
local held = 'h:' .. ARGV[1]
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == held then
    if ARGV[2] == '' then
      redis.call('DEL', KEYS[i])
    else
      redis.call('SET', KEYS[i], 'f:' .. ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
    end
  end
end
return 1
""")

# KEYS: value keys, then their lock keys.  ARGV: ttl ms (0: none), token,
# channel ('': none), origin as JSON, length of the value prefix, then per
# key: expected SHA-1 ('': the key must be absent), data.
# A value is stored only if the lock is still this token's (a write would
# have poisoned it) and the key is absent or holds what the filler saw.
_FILL = _Script("fill", """
local n = #KEYS / 2
local ttl = tonumber(ARGV[1])
local held = 'h:' .. ARGV[2]
local plen = tonumber(ARGV[5])
local stored, names = {}, {}
for i = 1, n do
  if redis.call('GET', KEYS[n + i]) == held then
    redis.call('DEL', KEYS[n + i])
    local cur = redis.call('GET', KEYS[i])
    local expect = ARGV[4 + 2 * i]
    if not cur or (expect ~= '' and redis.sha1hex(cur) == expect) then
      if ttl > 0 then
        redis.call('SET', KEYS[i], ARGV[5 + 2 * i], 'PX', ttl)
      else
        redis.call('SET', KEYS[i], ARGV[5 + 2 * i])
      end
      stored[#stored + 1] = i
      names[#names + 1] = cjson.encode(string.sub(KEYS[i], plen + 1))
    end
  end
end
if #stored > 0 and ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], '{"o":' .. ARGV[4] .. ',"k":[' .. table.concat(names, ',') .. ']}')
end
return stored
""")

# ---- the write-behind queue ---------------------------------------------------
# Records: "<version> <origin> " .. body (see stores.py).  The version clock
# is max(last + 1, TIME in microseconds), exact in a Lua double (< 2^53).
# A record that leaves the queue because of another instance is reported on
# its origin's done list, named ARGV-given prefix .. origin: in the {ns}
# slot, like every key here.

_LUA_COMMON = """
local function next_version(clock)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local v = math.max(tonumber(redis.call('GET', clock) or '0') + 1, now)
  local vs = string.format('%.0f', v)
  redis.call('SET', clock, vs)
  return v, vs
end
local function tell_origin(rec, key, by, prefix, ttl)
  local v, o = string.match(rec, '^(%d+) (%x+) ')
  if o and o ~= by then
    redis.call('RPUSH', prefix .. o, v .. ' ' .. key)
    redis.call('PEXPIRE', prefix .. o, ttl)
  end
end
"""

# KEYS: pending, queue, claims, clock [, value key, lock key]
# ARGV: key, body, max_pending (0: none), ttl ms (0: none), origin,
#       done prefix, done ttl ms [, "0": publish nothing]
# A key is in the queue or claimed, never both, and at most once: so one
# flusher at a time writes it, in order.  The channel is written into the
# source (one script per store): every argument is paid for on each set.
_QUEUE_PUSH_SRC = _LUA_COMMON + """
local old = redis.call('HGET', KEYS[1], ARGV[1])
local n = redis.call('HLEN', KEYS[1])
if not old and tonumber(ARGV[3]) > 0 and n >= tonumber(ARGV[3]) then
  return {0, n, 1, ''}
end
local v, vs = next_version(KEYS[4])
local rec = vs .. ' ' .. ARGV[5] .. ' ' .. ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], rec)
if old then
  tell_origin(old, ARGV[1], ARGV[5], ARGV[6], ARGV[7])
else
  n = n + 1
  if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
    redis.call('ZADD', KEYS[2], 'NX', v, ARGV[1])
  end
end
if KEYS[5] then
  if string.sub(ARGV[2], 1, 1) == 'v' then
    local ttl = tonumber(ARGV[4])
    if ttl > 0 then
      redis.call('SET', KEYS[5], string.sub(ARGV[2], 2), 'PX', ttl)
    else
      redis.call('SET', KEYS[5], string.sub(ARGV[2], 2))
    end
  else
    redis.call('DEL', KEYS[5])
  end
  redis.call('SET', KEYS[6], 'p', 'XX', 'KEEPTTL')
end
local channel = @CHANNEL@
if channel ~= '' and ARGV[8] ~= '0' then
  redis.call('PUBLISH', channel, '{"o":' .. cjson.encode(ARGV[5]) .. ',"k":[' .. cjson.encode(ARGV[1]) .. ']}')
end
return {1, n, old and 0 or 1, rec}
"""


def _lua_string(text: str) -> str:
    """A Lua string literal of any text (every byte as a decimal escape)."""
    return '"' + "".join(f"\\{b}" for b in text.encode("utf-8")) + '"'


# KEYS: pending, queue, claims, owners, kept, kept_until, consumer's done list
# ARGV: consumer, count, lease ms, fence window ms
# Claims whose lease ran out (their holder died or stalled) go back to the
# front of the queue first, and whom they were taken from is remembered
# for the fence window; then up to count keys are claimed.
_QUEUE_CLAIM = _Script("queue_claim", """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, k in ipairs(expired) do
  redis.call('ZREM', KEYS[3], k)
  local owner = redis.call('HGET', KEYS[4], k)
  redis.call('HDEL', KEYS[4], k)
  if owner then
    redis.call('HSET', KEYS[5], k, owner .. '\\n')
    redis.call('ZADD', KEYS[6], now + tonumber(ARGV[4]), k)
  end
  if redis.call('HEXISTS', KEYS[1], k) == 1 then redis.call('ZADD', KEYS[2], 0, k) end
end
local forgotten = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 1000)
for _, k in ipairs(forgotten) do
  redis.call('ZREM', KEYS[6], k)
  redis.call('HDEL', KEYS[5], k)
end
local out = {}
local deadline = now + tonumber(ARGV[3])
local popped = redis.call('ZPOPMIN', KEYS[2], tonumber(ARGV[2]))
for i = 1, #popped, 2 do
  local k = popped[i]
  local v = redis.call('HGET', KEYS[1], k)
  if v then
    redis.call('ZADD', KEYS[3], deadline, k)
    redis.call('HSET', KEYS[4], k, ARGV[1])
    out[#out + 1] = k
    out[#out + 1] = v
  end
end
local done = redis.call('LRANGE', KEYS[7], 0, 999)
if #done > 0 then redis.call('LTRIM', KEYS[7], #done, -1) end
return {redis.call('HLEN', KEYS[1]), #expired, out, done}
""")

# KEYS: claims, owners, kept, kept_until. ARGV: consumer, lease ms,
# abandon ("1": a key no longer held will not be written by this consumer,
# so its takeover needs no repair), keys...  -> the keys still held (renewed)
_QUEUE_HOLD = _Script("queue_hold", """
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local held = {}
for i = 4, #ARGV do
  local k = ARGV[i]
  if redis.call('HGET', KEYS[2], k) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', deadline, k)
    held[#held + 1] = k
  elseif ARGV[3] == '1' then
    local kept = redis.call('HGET', KEYS[3], k)
    if kept and string.sub(kept, 1, #ARGV[1] + 1) == ARGV[1] .. '\\n' then
      redis.call('HDEL', KEYS[3], k)
      redis.call('ZREM', KEYS[4], k)
    end
  end
end
return held
""")

# KEYS: pending, queue, claims, owners, clock, kept, kept_until
# ARGV: consumer, done prefix, done ttl ms, key1, record1, ...
# -> {status per key ("done", "newer", "late", "gone"), keys pending}
_QUEUE_ACK = _Script("queue_ack", _LUA_COMMON + """
local me = ARGV[1]
local statuses = {}
for i = 4, #ARGV, 2 do
  local k, rec = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[1], k)
  local status = 'gone'
  if redis.call('HGET', KEYS[4], k) == me then
    redis.call('ZREM', KEYS[3], k)
    redis.call('HDEL', KEYS[4], k)
    if cur == rec then
      redis.call('HDEL', KEYS[1], k)
      tell_origin(rec, k, me, ARGV[2], ARGV[3])
      local kept = redis.call('HGET', KEYS[6], k)
      if kept then
        local nl = string.find(kept, '\\n', 1, true)
        redis.call('HSET', KEYS[6], k, string.sub(kept, 1, nl) .. rec)
      end
      status = 'done'
    elseif cur then
      local v = string.match(cur, '^(%d+) ') or '0'
      redis.call('ZADD', KEYS[2], 'NX', v, k)
      status = 'newer'
    end
  else
    local kept = redis.call('HGET', KEYS[6], k)
    if kept and string.sub(kept, 1, #me + 1) == me .. '\\n' then
      -- this write landed after the takeover's: queue the latest record
      -- again, with a new version, so that it is written after this one
      redis.call('HDEL', KEYS[6], k)
      redis.call('ZREM', KEYS[7], k)
      local latest = cur
      if not latest then
        latest = string.sub(kept, #me + 2)
        if latest == '' then latest = nil end
      end
      if latest then
        local _, o, body = string.match(latest, '^(%d+) (%x*) (.*)$')
        if body then
          local v, vs = next_version(KEYS[5])
          redis.call('HSET', KEYS[1], k, vs .. ' ' .. o .. ' ' .. body)
          if not redis.call('ZSCORE', KEYS[3], k) then
            redis.call('ZADD', KEYS[2], 'NX', v, k)
          end
        end
      end
      status = 'late'
    elseif cur == rec then
      redis.call('HDEL', KEYS[1], k)
      tell_origin(rec, k, me, ARGV[2], ARGV[3])
      status = 'done'
    end
  end
  statuses[#statuses + 1] = status
end
return {statuses, redis.call('HLEN', KEYS[1])}
""")

# KEYS: pending, queue, claims, owners, consumer's done list
# ARGV: consumer, final ("1": drop the done list), keys...
_QUEUE_RELEASE = _Script("queue_release", """
for i = 3, #ARGV do
  local k = ARGV[i]
  if redis.call('HGET', KEYS[4], k) == ARGV[1] then
    redis.call('ZREM', KEYS[3], k)
    redis.call('HDEL', KEYS[4], k)
    if redis.call('HEXISTS', KEYS[1], k) == 1 then redis.call('ZADD', KEYS[2], 0, k) end
  end
end
if ARGV[2] == '1' then redis.call('DEL', KEYS[5]) end
return 1
""")

# KEYS: pending, origin's done list. ARGV: keys... -> {done entries, records}
_QUEUE_SETTLE = _Script("queue_settle", """
local done = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
local records = {}
if #ARGV > 0 then records = redis.call('HMGET', KEYS[1], unpack(ARGV)) end
return {done, records}
""")

_SCRIPTS = (_PUT, _REMOVE, _LOCK, _RENEW, _UNLOCK, _FILL, _QUEUE_CLAIM, _QUEUE_HOLD,
            _QUEUE_ACK, _QUEUE_RELEASE, _QUEUE_SETTLE)

# a script call blocks the server while it runs: batches go in chunks
_CHUNK = 1000


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _s(value: Any) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else str(value)


def _hash_tag(name: str) -> Optional[str]:
    """The hash tag Redis Cluster hashes a key name by, or None (whole name)."""
    i = name.find("{")
    if i < 0:
        return None
    j = name.find("}", i + 1)
    return name[i + 1:j] if j > i + 1 else None


_SLOT_TAGS: Dict[int, str] = {}


def _slot_tag(slot: int) -> str:
    """A short brace-free tag that hashes to slot (found once per slot)."""
    tag = _SLOT_TAGS.get(slot)
    if tag is None:
        i = 0
        while key_slot(b"%x" % i) != slot:
            i += 1
        tag = _SLOT_TAGS[slot] = "%x" % i
    return tag


class CircuitBreaker:
    """Closed (calls go through); open for ``seconds`` after a call found
    the store unavailable (calls fail at once); then half-open: exactly one
    call, the probe, goes through while the others keep failing at once,
    and the probe's outcome closes the breaker or opens it again.

    ``tripped`` is False while closed: the hot path checks one attribute.
    Sans-I/O: it only decides; the caller makes the call.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = monotonic) -> None:
        self.seconds = seconds
        self.tripped = False
        self._clock = clock
        self._lock = threading.Lock()
        self._until = 0.0
        self._probing = False
        self.last_failure: Optional[BaseException] = None

    def admit(self) -> bool:
        """True if this call is the probe; raises StoreUnavailable if it
        must fail at once."""
        with self._lock:
            if not self.tripped:
                return False
            if self._probing:
                why = "half-open: another call is probing Redis"
            elif self._clock() < self._until:
                why = f"open for {self.seconds}s"
            else:
                self._probing = True
                return True
        raise StoreUnavailable(f"Redis is unreachable (circuit breaker {why} after: "
                               f"{self.last_failure!r})")

    def succeeded(self, probe: bool) -> None:
        if probe:
            with self._lock:
                self._probing = False
                self.tripped = False

    def failed(self, probe: bool, exc: Optional[BaseException]) -> None:
        """A call failed: exc is its unavailability error, or None if the
        store answered (which closes a probing breaker)."""
        with self._lock:
            if probe:
                self._probing = False
            if exc is None:
                if probe:
                    self.tripped = False
                return
            self.last_failure = exc
            self._until = self._clock() + self.seconds
            self.tripped = True

