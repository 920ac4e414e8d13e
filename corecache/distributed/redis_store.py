"""RedisStore: the store on Redis (a single node or a Redis Cluster), over a
redis-py client the user builds.

Key layout, for namespace ``ns`` (which has no ':', '#' or braces, so no
two namespaces share a key and no user key reaches an internal one):

* ``ns:<key>``                      values (plain strings, TTL set with them)
* ``ns#lock:<key>``                 a key's fill lock (single node); on a
  cluster ``ns#lock:{ns:<key>}`` (or ``ns#lock:<key>`` when the key has its
  own hash tag), so that it lives in the value's slot and one script can
  check it and store the value
* ``ns#wb:{ns}:pending``            write-behind: hash key -> latest record
* ``ns#wb:{ns}:queue``              zset of keys waiting, by version
* ``ns#wb:{ns}:claims``             zset of claimed keys, by lease deadline (ms)
* ``ns#wb:{ns}:owners``             hash key -> consumer holding its claim
* ``ns#wb:{ns}:clock``              the version clock
* ``ns#wb:{ns}:kept``, ``:kept_until``  takeovers remembered for the fence
  window: key -> "<consumer whose claim ran out>\\n<record written since>"
* ``ns#wb:{ns}:done:<instance>``    list of "<version> <key>" of an
  instance's records that other instances settled (expires after a day)
* channel ``ns#inv``                invalidation messages

Everything reads in ``redis-cli``.  The write-behind keys share the hash tag
``{ns}``, so on a cluster they live in one slot and one script moves keys
between them atomically.

Round trips: ``get``/``set``/``delete`` one; ``get_many``/``set_many``/
``delete_many`` one on a single node (MGET; one script for SET+poison+
PUBLISH).  On a cluster, batches are grouped by node; writes with
invalidations add one PUBLISH round trip.

Failures: redis-py's errors become :class:`StoreUnavailable` (connection
refused or lost, timeouts, cluster down) or :class:`StoreError` (anything
else, e.g. OOM under ``noeviction``), with the original as ``__cause__``.
After an unavailability the circuit breaker opens: for ``circuit_breaker``
seconds every call fails at once; then one call (the probe) tries Redis
while the others keep failing at once, and its outcome closes or reopens
the breaker.

Slot migrations (cluster): a read of a batch whose slot is migrating falls
back to one GET per key, which follows ASK; a fill (a two-key script) on a
slot whose keys are split between two nodes is refused (the loaded value is
still returned); write-behind queue operations, which need their slot's
keys on one node, wait for the migration for up to ``MIGRATION_WAIT``
seconds.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from time import monotonic
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..config import check_seconds
from ..exceptions import StoreError, StoreUnavailable
from .stores import (DONE_LIST_TTL, FENCE_WINDOW_LEASES, LOCK_FAILURE_TTL, Store,
                     invalidation_message, lease_ms, parse_done, parse_invalidation)

__all__ = ["RedisStore", "CircuitBreaker"]

log = logging.getLogger("corecache.distributed")

# seconds a write-behind queue operation waits for a migration of its slot
MIGRATION_WAIT = 5.0

try:
    import redis
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.crc import key_slot
    from redis.exceptions import (AskError, ClusterDownError, ClusterError, NoScriptError,
                                  RedisClusterException, RedisError, TryAgainError)
    from redis.exceptions import ConnectionError as _RConnectionError
    from redis.exceptions import TimeoutError as _RTimeoutError
    from redis.retry import Retry
    _UNAVAILABLE: Tuple[type, ...] = (_RConnectionError, _RTimeoutError, ClusterDownError,
                                      RedisClusterException, OSError)
    _ERRORS: Tuple[type, ...] = (RedisError, RedisClusterException, OSError)
    # a slot being migrated: MOVED/ASK not followed (a node-direct call), or
    # TRYAGAIN, or redis-py giving up on them ("TTL exhausted")
    _MIGRATING: Tuple[type, ...] = (AskError, TryAgainError)
except ImportError:  # the redis extra is not installed
    redis = None  # type: ignore[assignment]


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


class RedisStore(Store):
    """A store on Redis over a redis-py client you build (so AUTH, TLS, ACL
    users, Sentinel and timeouts are yours to set), or from a URL.

    :param client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` with
        ``decode_responses=False``.
    :param namespace: the prefix of every key (no ':', '#' or braces).
    :param serializer: "json" (default), "pickle" (with ``secret_key``),
        "raw", or an object with ``dumps``/``loads``.
    :param secret_key: the HMAC key of the pickle serializer.
    :param default_ttl: seconds an entry lives when ``set`` gives no TTL.
    :param circuit_breaker: seconds to fail fast after Redis was unreachable
        before one call probes it again; None to always try.
    :param publish_invalidations: publish the keys of every write on the
        namespace's channel, for near caches in other processes.
    """

    def __init__(self, client: Any, *, namespace: str = "corecache", serializer: Any = "json",
                 secret_key: Any = None, default_ttl: Optional[float] = None,
                 circuit_breaker: Optional[float] = 1.0,
                 publish_invalidations: bool = True) -> None:
        if redis is None:
            raise ImportError("RedisStore needs redis-py: pip install 'corecache[redis]'")
        from redis.cluster import RedisCluster
        if isinstance(client, RedisCluster):
            self._cluster = True
            kwargs = client.nodes_manager.connection_kwargs
        elif isinstance(client, redis.Redis):
            self._cluster = False
            kwargs = client.connection_pool.connection_kwargs
        else:
            raise TypeError(f"client must be a redis.Redis or redis.cluster.RedisCluster, "
                            f"got {client!r}")
        if kwargs.get("decode_responses"):
            raise ValueError("RedisStore needs a client with decode_responses=False: "
                             "stored values are bytes")
        breaker = check_seconds(circuit_breaker, "circuit_breaker", allow_inf=False)
        if not isinstance(publish_invalidations, bool):
            raise TypeError(f"publish_invalidations must be a bool, got {publish_invalidations!r}")
        super().__init__(namespace=namespace, serializer=serializer, secret_key=secret_key,
                         default_ttl=default_ttl)
        self._breaker = CircuitBreaker(breaker) if breaker is not None else None
        self._client = client
        self._owns_client = False
        self._execute = client.execute_command
        ns = self._namespace
        self._prefix = ns + ":"
        self._lock_prefix = ns + "#lock:"
        self._channel = ns + "#inv"
        self._publish = self._channel if publish_invalidations else ""
        wb = f"{ns}#wb:{{{ns}}}:"
        (self._k_pending, self._k_queue, self._k_claims, self._k_owners, self._k_clock,
         self._k_kept, self._k_kept_until) = (
            wb + n for n in ("pending", "queue", "claims", "owners", "clock", "kept",
                             "kept_until"))
        self._done_prefix = wb + "done:"
        self._queue_push_script = _Script(
            "queue_push", _QUEUE_PUSH_SRC.replace("@CHANNEL@", _lua_string(self._publish)))
        self._scripts = _SCRIPTS + (self._queue_push_script,)
        self._done_ttl = str(int(DONE_LIST_TTL * 1000))
        self._listeners: List["_Listener"] = []
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, cluster: bool = False, namespace: str = "corecache",
                 serializer: Any = "json", secret_key: Any = None,
                 default_ttl: Optional[float] = None, circuit_breaker: Optional[float] = 1.0,
                 publish_invalidations: bool = True, **client_kwargs: Any) -> "RedisStore":
        """A store with a client built from ``url`` (``redis://``, ``rediss://``,
        ``unix://``), closed with the store.  ``cluster=True`` builds a
        ``RedisCluster``.  Unless given, the client gets cache-minded
        defaults: 2 s socket and connect timeouts, and one quick retry of a
        refused or dropped connection but never of a timeout (a single node;
        a cluster client retries nothing), so that a call waits at most 2 s
        for a server that stopped answering.  Other keyword arguments go to
        the client."""
        if redis is None:
            raise ImportError("RedisStore needs redis-py: pip install 'corecache[redis]'")
        client_kwargs.setdefault("socket_timeout", 2.0)
        client_kwargs.setdefault("socket_connect_timeout", 2.0)
        if cluster:
            client_kwargs.setdefault("retry", Retry(NoBackoff(), 0))
            from redis.cluster import RedisCluster
            client = RedisCluster.from_url(url, **client_kwargs)
        else:
            client_kwargs.setdefault("retry", Retry(ExponentialBackoff(cap=0.05, base=0.005), 1,
                                                    supported_errors=(_RConnectionError,)))
            client = redis.Redis.from_url(url, **client_kwargs)
        try:
            store = cls(client, namespace=namespace, serializer=serializer,
                        secret_key=secret_key, default_ttl=default_ttl,
                        circuit_breaker=circuit_breaker,
                        publish_invalidations=publish_invalidations)
        except BaseException:
            client.close()
            raise
        store._owns_client = True
        return store

    @property
    def client(self) -> Any:
        return self._client

    @property
    def is_cluster(self) -> bool:
        return self._cluster

    @property
    def breaker(self) -> Optional[CircuitBreaker]:
        return self._breaker

    def __repr__(self) -> str:
        kind = "cluster" if self._cluster else "single node"
        return f"RedisStore(namespace={self._namespace!r}, {kind}, serializer={self._serializer!r})"

    def close(self) -> None:
        """Stop invalidation listeners and the lease keeper; close the
        client if the store built it."""
        self._closed = True
        super().close()
        for listener in list(self._listeners):
            listener.close()
        if self._owns_client:
            self._client.close()

    # ---- names ---------------------------------------------------------------

    def lock_key(self, key: str) -> str:
        """The name of key's fill lock (in the value's slot on a cluster)."""
        if not self._cluster:
            return self._lock_prefix + key
        rkey = self._prefix + key
        if _hash_tag(rkey) is not None:      # the key's own tag (ns has no braces)
            return self._lock_prefix + key
        if "}" not in rkey:
            return self._lock_prefix + "{" + rkey + "}"
        return (self._lock_prefix + "{" + _slot_tag(key_slot(rkey.encode("utf-8"))) + "}"
                + key)

    def _done_key(self, origin: str) -> str:
        return self._done_prefix + origin

    # ---- failures ----------------------------------------------------------

    def _failed(self, exc: BaseException, probe: bool) -> StoreError:
        if isinstance(exc, _UNAVAILABLE):
            if self._breaker is not None:
                self._breaker.failed(probe, exc)
            return StoreUnavailable(f"Redis is unreachable: {type(exc).__name__}: {exc}")
        if self._breaker is not None:
            self._breaker.failed(probe, None)
        return StoreError(f"Redis failed: {type(exc).__name__}: {exc}")

    def _run(self, fn: Callable[[], Any], *, wait_migration: bool = False) -> Any:
        """fn() through the breaker, with error mapping, one retry after
        loading the scripts (after a restart or a failover the server has
        none), and, for queue operations, retries through a migration of
        their slot."""
        breaker = self._breaker
        probe = breaker.admit() if breaker is not None and breaker.tripped else False
        deadline = None
        delay = 0.01
        try:
            while True:
                try:
                    try:
                        result = fn()
                    except NoScriptError:
                        self._load_scripts()
                        result = fn()
                    break
                except _ERRORS as exc:
                    if not (wait_migration and self._cluster and _migrating(exc)):
                        raise
                    now = monotonic()
                    if deadline is None:
                        deadline = now + MIGRATION_WAIT
                    if now >= deadline:
                        raise
                    time.sleep(min(delay, deadline - now))
                    delay = min(delay * 2, 0.1)
        except _ERRORS as exc:
            raise self._failed(exc, probe) from exc
        except BaseException:
            if probe:    # neither success nor failure: let the next call probe
                breaker.failed(True, breaker.last_failure)   # type: ignore[union-attr]
            raise
        if probe:
            breaker.succeeded(True)   # type: ignore[union-attr]
        return result

    def _load_scripts(self) -> None:
        if self._cluster:   # SCRIPT LOAD goes to every master
            for node in self._client.get_primaries():
                conn = self._client.get_redis_connection(node)
                for script in self._scripts:
                    conn.script_load(script.source)
            return
        pipe = self._pipeline()
        for script in self._scripts:
            pipe.execute_command("SCRIPT", "LOAD", script.source)
        pipe.execute()

    def _script(self, script: _Script, keys: List[str], args: Sequence[Any], *,
                wait_migration: bool = False) -> Any:
        return self._run(lambda: self._execute("EVALSHA", script.sha, len(keys), *keys, *args),
                         wait_migration=wait_migration)

    def _queue_script(self, script: _Script, keys: List[str], args: Sequence[Any]) -> Any:
        return self._script(script, keys, args, wait_migration=True)

    def _pipeline(self) -> Any:
        return self._client.pipeline(transaction=False)

    def _by_node(self, route: List[str]) -> Dict[Any, List[int]]:
        """Indexes of route keys grouped by the node serving their slot."""
        groups: Dict[Any, List[int]] = {}
        node_of = self._client.get_node_from_key
        for i, k in enumerate(route):
            groups.setdefault(node_of(k), []).append(i)
        return groups

    def _on_nodes(self, commands: List[Tuple[str, Tuple[Any, ...]]]) -> List[Any]:
        """Cluster: each (route key, command) sent to the node serving its
        slot, in one pipeline per node, with no redirection followed: a
        command whose slot moved or is migrating gets its error as result
        (the caller decides).  Order is kept within a node."""
        groups = self._by_node([r for r, _ in commands])
        out: List[Any] = [None] * len(commands)
        for node, idxs in groups.items():
            conn = self._client.get_redis_connection(node)
            for attempt in (0, 1):
                pipe = conn.pipeline(transaction=False)
                for i in idxs:
                    pipe.execute_command(*commands[i][1])
                results = pipe.execute(raise_on_error=False)
                if attempt == 0 and any(isinstance(r, NoScriptError) for r in results):
                    for script in self._scripts:
                        conn.script_load(script.source)
                    continue
                break
            for i, r in zip(idxs, results):
                out[i] = r
        return out

    def ping(self) -> bool:
        """True if Redis answers (through the breaker)."""
        return bool(self._run(lambda: self._client.ping()))

    # ---- values ------------------------------------------------------------

    def fetch(self, key: str) -> Optional[bytes]:
        breaker = self._breaker
        if breaker is not None and breaker.tripped:
            return self._run(lambda: self._execute("GET", self._prefix + key))  # type: ignore
        try:
            return self._execute("GET", self._prefix + key)  # type: ignore[no-any-return]
        except _ERRORS as exc:
            raise self._failed(exc, False) from exc

    def _cluster_reads(self, keys: List[str], ttl: bool) -> Tuple[List[Any], List[Any]]:
        """GET (and PTTL) of keys on a cluster: one MGET per slot, sent
        straight to its node; a slot that is migrating (or moved) falls back
        to one GET per key, which follows ASK and MOVED."""
        rkeys = [self._prefix + k for k in keys]
        slots: Dict[int, List[int]] = {}
        for i, rk in enumerate(rkeys):
            slots.setdefault(self._client.keyslot(rk), []).append(i)
        commands: List[Tuple[str, Tuple[Any, ...]]] = []
        for idxs in slots.values():
            commands.append((rkeys[idxs[0]], ("MGET", *[rkeys[i] for i in idxs])))
            if ttl:
                commands += [(rkeys[i], ("PTTL", rkeys[i])) for i in idxs]
        results = self._on_nodes(commands)
        datas: List[Any] = [None] * len(keys)
        lefts: List[Any] = [None] * len(keys)
        pos = 0
        for idxs in slots.values():
            n = 1 + (len(idxs) if ttl else 0)
            got = results[pos:pos + n]
            pos += n
            errors = [r for r in got if isinstance(r, Exception)]
            if errors:
                bad = next((e for e in errors if not _migrating(e)), None)
                if bad is not None:
                    raise bad
                for i in idxs:   # one key at a time, following ASK and MOVED
                    datas[i] = self._execute("GET", rkeys[i])
                    if ttl:
                        lefts[i] = self._execute("PTTL", rkeys[i])
                continue
            for j, i in enumerate(idxs):
                datas[i] = got[0][j]
                if ttl:
                    lefts[i] = got[1 + j]
        return datas, lefts

    def fetch_many(self, keys: List[str]) -> List[Optional[bytes]]:
        if not keys:
            return []
        if self._cluster:
            return self._run(lambda: self._cluster_reads(keys, False)[0])  # type: ignore
        rkeys = [self._prefix + k for k in keys]
        return self._run(lambda: self._execute("MGET", *rkeys))  # type: ignore[no-any-return]

    def fetch_ttl(self, key: str) -> Tuple[Optional[bytes], Optional[float]]:
        datas, lefts = self.fetch_many_ttl([key])
        return datas[0], lefts[0]

    def fetch_many_ttl(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                        List[Optional[float]]]:
        if not keys:
            return [], []
        if self._cluster:
            datas, pttls = self._run(lambda: self._cluster_reads(keys, True))
        else:
            rkeys = [self._prefix + k for k in keys]

            def batch() -> Any:
                pipe = self._pipeline()
                pipe.execute_command("MGET", *rkeys)
                for rk in rkeys:
                    pipe.execute_command("PTTL", rk)
                r = pipe.execute()
                return r[0], r[1:]
            datas, pttls = self._run(batch)
        lefts = [None if d is None or p is None or p < 0 else p / 1000.0
                 for d, p in zip(datas, pttls)]
        return list(datas), lefts

    def _message(self, origin: Optional[str], keys: Optional[List[str]]) -> bytes:
        return invalidation_message(origin, keys) if self._publish else b""

    def put(self, key: str, data: bytes, ttl: Optional[int], origin: Optional[str]) -> None:
        self.put_many([(key, data)], ttl, origin)

    def put_many(self, items: List[Tuple[str, bytes]], ttl: Optional[int],
                 origin: Optional[str]) -> None:
        prefix = self._prefix
        if self._cluster:
            def batch() -> None:
                # per key: poison its fill lock, then store: in this order on
                # one connection, a fill either came before (and is
                # overwritten) or is refused
                pipe = self._pipeline()
                for k, data in items:
                    pipe.execute_command("SET", self.lock_key(k), "p", "XX", "KEEPTTL")
                    if ttl is None:
                        pipe.execute_command("SET", prefix + k, data)
                    else:
                        pipe.execute_command("SET", prefix + k, data, "PX", ttl)
                pipe.execute()
            self._run(batch)
            if self._publish:
                msg = self._message(origin, [k for k, _ in items])
                self._run(lambda: self._client.publish(self._publish, msg))
            return
        chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
        msg = self._message(origin, [k for k, _ in items])

        def scripts() -> None:
            pipe = self._pipeline()
            for n, chunk in enumerate(chunks):
                last = n == len(chunks) - 1   # one message, after every write
                pipe.execute_command(
                    "EVALSHA", _PUT.sha, 2 * len(chunk), *[prefix + k for k, _ in chunk],
                    *[self._lock_prefix + k for k, _ in chunk],
                    ttl or 0, self._publish if last else "", msg if last else b"",
                    *[d for _, d in chunk])
            pipe.execute()
        if len(chunks) == 1:
            chunk = chunks[0]
            self._script(_PUT, [prefix + k for k, _ in chunk]
                         + [self._lock_prefix + k for k, _ in chunk],
                         [ttl or 0, self._publish, msg, *[d for _, d in chunk]])
            return
        self._run(scripts)

    def remove(self, key: str, origin: Optional[str]) -> bool:
        return self.remove_many([key], origin) > 0

    def remove_many(self, keys: List[str], origin: Optional[str]) -> int:
        rkeys = [self._prefix + k for k in keys]
        msg = self._message(origin, keys)
        if self._cluster:
            def batch() -> int:
                pipe = self._pipeline()
                for k, rk in zip(keys, rkeys):
                    pipe.execute_command("SET", self.lock_key(k), "p", "XX", "KEEPTTL")
                    pipe.execute_command("DEL", rk)
                return sum(pipe.execute()[1::2])
            n = self._run(batch)
            if self._publish:
                self._run(lambda: self._client.publish(self._publish, msg))
            return n  # type: ignore[no-any-return]
        lks = [self._lock_prefix + k for k in keys]
        if len(keys) <= _CHUNK:
            return int(self._script(_REMOVE, rkeys + lks, [self._publish, msg]))
        chunks = [(rkeys[i:i + _CHUNK], lks[i:i + _CHUNK]) for i in range(0, len(rkeys), _CHUNK)]

        def scripts() -> int:
            pipe = self._pipeline()
            for n, (rs, ls) in enumerate(chunks):
                last = n == len(chunks) - 1
                pipe.execute_command("EVALSHA", _REMOVE.sha, 2 * len(rs), *rs, *ls,
                                     self._publish if last else "", msg if last else b"")
            return sum(pipe.execute())
        return self._run(scripts)  # type: ignore[no-any-return]

    def clear(self) -> None:
        """Remove every value of this namespace (SCAN + UNLINK), cancel the
        fills in flight, and tell the near caches to drop everything."""
        values = _glob_escape(self._prefix) + "*"
        locks = _glob_escape(self._lock_prefix) + "*"

        def scan(pattern: str, act: Callable[[List[Any]], None]) -> None:
            batch: List[Any] = []
            for k in self._client.scan_iter(match=pattern, count=1000):
                batch.append(k)
                if len(batch) >= 1000:
                    act(batch)
                    batch = []
            if batch:
                act(batch)
        self._run(lambda: scan(locks, self._poison_all))
        self._run(lambda: scan(values, self._unlink))
        if self._publish:
            msg = invalidation_message(None, None)
            self._run(lambda: self._client.publish(self._publish, msg))

    def _poison_all(self, lks: List[Any]) -> None:
        pipe = self._pipeline()
        for k in lks:
            pipe.execute_command("SET", k, "p", "XX", "KEEPTTL")
        pipe.execute()

    def _unlink(self, rkeys: List[Any]) -> None:
        if not self._cluster:
            self._execute("UNLINK", *rkeys)
            return
        pipe = self._pipeline()
        for k in rkeys:
            pipe.execute_command("UNLINK", k)
        pipe.execute()

    # ---- fill locks --------------------------------------------------------

    def lock(self, key: str, token: str, lease: float) -> bool:
        ms = lease_ms(lease)
        return bool(self._script(_LOCK, [self.lock_key(key)], [token, ms])[0])

    def lock_many(self, keys: List[str], token: str, lease: float) -> List[str]:
        if not keys:
            return []
        ms = lease_ms(lease)
        if not self._cluster:
            got = self._script(_LOCK, [self.lock_key(k) for k in keys], [token, ms])
            return [k for k, ok in zip(keys, got) if ok]

        def batch() -> Any:
            pipe = self._pipeline()
            for k in keys:
                pipe.execute_command("EVALSHA", _LOCK.sha, 1, self.lock_key(k), token, ms)
            return pipe.execute()
        return [k for k, ok in zip(keys, self._run(batch)) if ok[0]]

    def renew(self, items: List[Tuple[str, str]], lease: float) -> None:
        if not items:
            return
        ms = lease_ms(lease)
        if not self._cluster:
            self._script(_RENEW, [self.lock_key(k) for k, _ in items],
                         [ms, *[t for _, t in items]])
            return

        def batch() -> None:
            pipe = self._pipeline()
            for k, t in items:
                pipe.execute_command("EVALSHA", _RENEW.sha, 1, self.lock_key(k), ms, t)
            pipe.execute()
        self._run(batch)

    def lock_state(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                    List[Optional[str]]]:
        rkeys = [self._prefix + k for k in keys]
        lks = [self.lock_key(k) for k in keys]

        def batch() -> Any:
            pipe = self._pipeline()
            if self._cluster:   # single-key commands: they follow redirections
                for rk, lk in zip(rkeys, lks):
                    pipe.execute_command("GET", rk)
                    pipe.execute_command("GET", lk)
                r = pipe.execute()
                return r[0::2], r[1::2]
            pipe.execute_command("MGET", *rkeys)
            pipe.execute_command("MGET", *lks)
            return pipe.execute()
        datas, states = self._run(batch)
        return list(datas), [None if s is None else _s(s) for s in states]

    def fill(self, key: str, data: bytes, ttl: Optional[int], token: str,
             origin: Optional[str], expect: Optional[str] = None) -> bool:
        return bool(self._fill([(key, data, expect)], ttl, token, origin))

    def fill_many(self, items: List[Tuple[str, bytes, Optional[str]]], ttl: Optional[int],
                  token: str, origin: Optional[str]) -> List[str]:
        return self._fill(items, ttl, token, origin)

    def _fill(self, items: List[Tuple[str, bytes, Optional[str]]], ttl: Optional[int],
              token: str, origin: Optional[str]) -> List[str]:
        if not items:
            return []
        o = "null" if origin is None else json.dumps(origin)
        head = [ttl or 0, token]
        if not self._cluster:
            stored: List[str] = []
            for i in range(0, len(items), _CHUNK):
                chunk = items[i:i + _CHUNK]
                args: List[Any] = head + [self._publish, o, len(self._prefix)]
                for _, data, expect in chunk:
                    args += (expect or "", data)
                got = self._script(_FILL, [self._prefix + k for k, _, _ in chunk]
                                   + [self.lock_key(k) for k, _, _ in chunk], args)
                stored += [chunk[int(j) - 1][0] for j in got]
            return stored
        # one script per key, straight to its node: a slot whose keys are
        # split by a migration answers TRYAGAIN, and the fill is refused
        commands = []
        for k, data, expect in items:
            commands.append((self._prefix + k, ("EVALSHA", _FILL.sha, 2, self._prefix + k,
                                                self.lock_key(k), *head, "", o,
                                                len(self._prefix), expect or "", data)))
        results = self._run(lambda: self._on_nodes(commands))
        stored = []
        for (k, _, _), r in zip(items, results):
            if isinstance(r, Exception):
                if not _migrating(r):
                    raise self._failed(r, False) from r
                log.info("corecache: fill of key %r refused: its slot is migrating (%s)", k, r)
                continue
            if r:
                stored.append(k)
        if stored and self._publish:
            msg = self._message(origin, stored)
            self._run(lambda: self._client.publish(self._publish, msg))
        return stored

    def unlock(self, key: str, token: str, failure: Optional[str] = None) -> None:
        self._script(_UNLOCK, [self.lock_key(key)],
                     [token, failure or "", lease_ms(LOCK_FAILURE_TTL)])

    def unlock_many(self, keys: List[str], token: str) -> None:
        if not keys:
            return
        if not self._cluster:
            self._script(_UNLOCK, [self.lock_key(k) for k in keys], [token, "", 1])
            return

        def batch() -> None:
            pipe = self._pipeline()
            for k in keys:
                pipe.execute_command("EVALSHA", _UNLOCK.sha, 1, self.lock_key(k), token, "", 1)
            pipe.execute()
        self._run(batch)

    # ---- write-behind queue ------------------------------------------------

    def queue_push(self, key: str, body: bytes, ttl: Optional[int], max_pending: int,
                   origin: str) -> Tuple[Optional[bytes], int, bool]:
        script = self._queue_push_script
        queue_keys = [self._k_pending, self._k_queue, self._k_claims, self._k_clock]
        tail = [self._done_prefix, self._done_ttl]
        if not self._cluster:
            # one round trip: the durable record, the cached value, the message
            ok, n, new, record = self._queue_script(
                script, queue_keys + [self._prefix + key, self.lock_key(key)],
                [key, body, max_pending, ttl or 0, origin] + tail)
            return (record if ok else None), int(n), bool(new)
        # a cluster keeps the queue and the value in different slots: the
        # durable record first, then the cached value (a failure between the
        # two leaves the write queued and the old value dropped, see below)
        ok, n, new, record = self._queue_script(
            script, queue_keys, [key, body, max_pending, 0, origin] + tail + ["0"])
        if ok:
            try:
                if body[:1] == b"v":
                    self.put(key, body[1:], ttl, origin)
                else:
                    self.remove(key, origin)
            except StoreError:
                try:   # never leave the old value shadowing the queued one
                    self.remove(key, origin)
                except StoreError:
                    pass
                raise
        return (record if ok else None), int(n), bool(new)

    def queue_claim(self, consumer: str, n: int, lease: float
                    ) -> Tuple[List[Tuple[str, bytes]], int, int, List[Tuple[int, str]]]:
        window = lease_ms(lease * FENCE_WINDOW_LEASES)
        pending, reclaimed, flat, done = self._queue_script(
            _QUEUE_CLAIM, [self._k_pending, self._k_queue, self._k_claims, self._k_owners,
                           self._k_kept, self._k_kept_until, self._done_key(consumer)],
            [consumer, n, lease_ms(lease), window])
        items = [(_s(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]
        return items, int(pending), int(reclaimed), [parse_done(e) for e in done]

    def queue_hold(self, consumer: str, keys: List[str], lease: float,
                   abandon: bool = False) -> List[str]:
        if not keys:
            return []
        held = self._queue_script(
            _QUEUE_HOLD, [self._k_claims, self._k_owners, self._k_kept, self._k_kept_until],
            [consumer, lease_ms(lease), "1" if abandon else "0", *keys])
        return [_s(k) for k in held]

    def queue_ack(self, consumer: str, items: List[Tuple[str, bytes]]
                  ) -> Tuple[Dict[str, str], int]:
        args: List[Any] = [consumer, self._done_prefix, self._done_ttl]
        for k, record in items:
            args += (k, record)
        statuses, pending = self._queue_script(
            _QUEUE_ACK, [self._k_pending, self._k_queue, self._k_claims, self._k_owners,
                         self._k_clock, self._k_kept, self._k_kept_until], args)
        return {k: _s(st) for (k, _), st in zip(items, statuses)}, int(pending)

    def queue_release(self, consumer: str, keys: List[str], final: bool = False) -> None:
        if keys or final:
            self._queue_script(
                _QUEUE_RELEASE, [self._k_pending, self._k_queue, self._k_claims,
                                 self._k_owners, self._done_key(consumer)],
                [consumer, "1" if final else "0", *keys])

    def queue_settle(self, origin: str, keys: List[str]
                     ) -> Tuple[List[Tuple[int, str]], List[Optional[bytes]]]:
        done, records = self._queue_script(
            _QUEUE_SETTLE, [self._k_pending, self._done_key(origin)], keys)
        return [parse_done(e) for e in done], list(records)

    def queue_records(self, keys: List[str]) -> List[Optional[bytes]]:
        if not keys:
            return []
        p = self._k_pending
        return self._run(lambda: self._execute("HMGET", p, *keys),  # type: ignore
                         wait_migration=True)

    def queue_count(self) -> int:
        p = self._k_pending
        return int(self._run(lambda: self._execute("HLEN", p), wait_migration=True))

    def _durability(self) -> Optional[str]:
        """Why the queue would not survive a restart of the Redis server
        that holds it (no AOF and no replica), or None."""
        def ask() -> Tuple[dict, dict]:
            if self._cluster:
                conn = self._client.get_redis_connection(
                    self._client.get_node_from_key(self._k_pending))
            else:
                conn = self._client
            return conn.info("persistence"), conn.info("replication")
        try:
            persistence, replication = self._run(ask)
        except StoreError:
            return None
        if int(persistence.get("aof_enabled", 0)) or int(replication.get("connected_slaves", 0)):
            return None
        return (f"the write-behind queue of namespace {self._namespace!r} lives on a Redis "
                f"server without an append-only file (appendonly no) and without a replica: "
                f"a restart or a crash of that server loses the writes queued since its last "
                f"snapshot, if any (flush() and close() then raise WritesLostError naming "
                f"them). Run it with appendonly yes, or with a replica.")

    # ---- invalidation ------------------------------------------------------

    def subscribe(self, callback: Callable[..., None], *, heartbeat: float = 1.0) -> Any:
        listener = _Listener(self, callback, heartbeat)
        self._listeners.append(listener)
        listener.start()
        return listener

    def _subscriber_client(self, attempt: int) -> Any:
        """A client of its own for the subscription, that never retries: a
        lost connection must show at once, not after redis-py's retries."""
        if self._cluster:
            # PUBLISH reaches every node of a cluster: any master will do
            nodes = self._client.get_primaries()
            pool = self._client.get_redis_connection(
                nodes[attempt % len(nodes)]).connection_pool
        else:
            pool = self._client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["retry"] = Retry(NoBackoff(), 0)
        return redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, **kwargs))


class _Listener:
    """A daemon thread subscribed to the invalidation channel.

    It reports "up" once subscribed (again), "keys" for each message and
    "down" when the connection is lost or the server stops answering PING
    within two heartbeats; then it reconnects with backoff until stopped.
    """

    def __init__(self, store: RedisStore, callback: Callable[..., None],
                 heartbeat: float) -> None:
        self._store = store
        self._callback = callback
        self._heartbeat = heartbeat
        self._stop = threading.Event()
        self.up = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"corecache-invalidation-{store.namespace}")

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        try:
            self._store._listeners.remove(self)
        except ValueError:
            pass

    def _emit(self, event: str, origin: Optional[str] = None,
              keys: Optional[List[str]] = None) -> None:
        try:
            self._callback(event, origin, keys)
        except Exception:
            log.exception("corecache: invalidation callback failed")

    def _run(self) -> None:
        attempt = 0
        poll = min(0.1, self._heartbeat / 4)
        while not self._stop.is_set():
            client = ps = None
            try:
                client = self._store._subscriber_client(attempt)
                ps = client.pubsub()
                ps.subscribe(self._store._channel)
                last_rx = last_ping = monotonic()
                while not self._stop.is_set():
                    msg = ps.get_message(timeout=poll)
                    now = monotonic()
                    if msg is not None:
                        last_rx = now
                        kind = msg["type"]
                        if kind in ("subscribe", b"subscribe"):
                            if not self.up:
                                self.up = True
                                attempt = 0
                                self._emit("up")
                        elif kind in ("message", b"message"):
                            try:
                                origin, keys = parse_invalidation(msg["data"])
                            except (ValueError, TypeError, AttributeError):
                                log.warning("corecache: ignoring a malformed invalidation "
                                            "message %r", msg["data"])
                                continue
                            self._emit("keys", origin, keys)
                    if now - last_ping >= self._heartbeat:
                        ps.ping()
                        last_ping = now
                    if now - last_rx > 2 * self._heartbeat + poll:
                        raise StoreUnavailable("the invalidation channel stopped answering PING")
            except Exception as exc:
                if self._stop.is_set():
                    break
                if self.up:
                    self.up = False
                    log.warning("corecache: invalidation channel of namespace %r lost (%r); "
                                "near caches bypass their local tier until it is back",
                                self._store.namespace, exc)
                    self._emit("down")
                attempt += 1
            finally:
                for thing in (ps, client):
                    if thing is not None:
                        try:
                            thing.close()
                        except Exception:
                            pass
                if client is not None:
                    try:
                        client.connection_pool.disconnect()
                    except Exception:
                        pass
            self._stop.wait(min(1.0, 0.02 * (2 ** min(attempt, 6))))
        if self.up:
            self.up = False
