"""RedisStore: the store on Redis (a single node or a Redis Cluster), over a
redis-py client the user builds.

Key layout, for namespace ``ns`` (no braces allowed in it):

* ``ns:<key>``                      values (plain strings, TTL set with them)
* ``ns#load:<key>``                 stampede lock of a key (token, PX lease)
* ``ns#refresh:<key>``              refresh-ahead lock of a key
* ``ns#wb:{ns}:pending``            write-behind: hash key -> latest record
* ``ns#wb:{ns}:queue``              zset of keys waiting, by arrival
* ``ns#wb:{ns}:claims``             zset of claimed keys, by lease deadline (ms)
* ``ns#wb:{ns}:owners``             hash key -> consumer holding its claim
* ``ns#wb:{ns}:seq``                arrival counter
* channel ``ns#inv``                invalidation messages

User keys can only produce the first form (``ns:`` + anything), so they
never collide with the others.  The write-behind keys share the hash tag
``{ns}``, so on a cluster they live in one slot and one script can move
keys between them atomically.

Round trips: ``get``/``set``/``delete`` one; ``get_many``/``set_many``/
``delete_many`` one on a single node (MGET; one script for SET+PUBLISH;
one script for DEL+PUBLISH).  On a cluster, batches are grouped by slot
into one pipeline, which redis-py sends to each master at once; writes
with invalidations add one PUBLISH round trip.

Failures: redis-py's errors become :class:`StoreUnavailable` (connection
refused or lost, timeouts, cluster down) or :class:`StoreError` (anything
else, e.g. OOM under ``noeviction``), with the original as ``__cause__``.
After an unavailability, the circuit breaker fails every call at once for
``circuit_breaker`` seconds instead of waiting on a dead server again.
"""
from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
from time import monotonic
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..config import check_seconds
from ..exceptions import StoreError, StoreUnavailable
from .stores import (Store, invalidation_message, parse_invalidation)

__all__ = ["RedisStore"]

log = logging.getLogger("corecache.distributed")

try:
    import redis
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.exceptions import NoScriptError, RedisError
    from redis.retry import Retry
    try:
        from redis.exceptions import RedisClusterException
    except ImportError:  # pragma: no cover
        RedisClusterException = RedisError  # type: ignore[misc,assignment]
    from redis.exceptions import ConnectionError as _RConnectionError
    from redis.exceptions import TimeoutError as _RTimeoutError
    try:
        from redis.exceptions import ClusterDownError, TryAgainError
        _UNAVAILABLE: Tuple[type, ...] = (_RConnectionError, _RTimeoutError, ClusterDownError,
                                          TryAgainError, RedisClusterException, OSError)
    except ImportError:  # pragma: no cover
        _UNAVAILABLE = (_RConnectionError, _RTimeoutError, RedisClusterException, OSError)
    _ERRORS: Tuple[type, ...] = (RedisError, RedisClusterException, OSError)
except ImportError:  # the redis extra is not installed
    redis = None  # type: ignore[assignment]


class _Script:
    __slots__ = ("name", "source", "sha")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


# KEYS: value keys. ARGV: ttl ms (0: none), channel ('': none), message, values...
_PUT = _Script("put", """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  if ttl > 0 then
    redis.call('SET', KEYS[i], ARGV[i + 3], 'PX', ttl)
  else
    redis.call('SET', KEYS[i], ARGV[i + 3])
  end
end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return #KEYS
""")

# KEYS: value keys. ARGV: channel ('': none), message
_REMOVE = _Script("remove", """
local n = 0
for i = 1, #KEYS do n = n + redis.call('DEL', KEYS[i]) end
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n
""")

# compare-and-delete. KEYS: lock keys. ARGV: their tokens
_UNLOCK = _Script("unlock", """
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then n = n + redis.call('DEL', KEYS[i]) end
end
return n
""")

# KEYS: pending, queue, claims, seq [, value key]
# ARGV: key, record, max_pending (0: none), ttl ms (0: none), origin
#       [, "0": publish nothing]
# A key is in the queue or claimed, never both, and at most once: so one
# flusher at a time writes it, in order.  The channel is written into the
# source (one script per store): every argument is paid for on each set.
_WB_ENQUEUE_SRC = """
local new = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1
local n = redis.call('HLEN', KEYS[1])
if new then
  if tonumber(ARGV[3]) > 0 and n > tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], ARGV[1])   -- full: refused, as if never written
    return {0, n - 1, 1}
  end
  if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
    redis.call('ZADD', KEYS[2], 'NX', redis.call('INCR', KEYS[4]), ARGV[1])
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
end
local channel = @CHANNEL@
if channel ~= '' and ARGV[6] ~= '0' then
  local origin = 'null'
  if ARGV[5] ~= '' then origin = cjson.encode(ARGV[5]) end
  redis.call('PUBLISH', channel, '{"o":' .. origin .. ',"k":[' .. cjson.encode(ARGV[1]) .. ']}')
end
return {1, n, new and 1 or 0}
"""


def _lua_string(text: str) -> str:
    """A Lua string literal of any text (every byte as a decimal escape)."""
    return '"' + "".join(f"\\{b}" for b in text.encode("utf-8")) + '"'


# KEYS: pending, queue, claims, owners. ARGV: consumer, count, lease ms
# Claims whose lease ran out (their holder died or stalled) go back to the
# front of the queue first; then up to count keys are claimed.
_WB_CLAIM = _Script("wb_claim", """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, k in ipairs(expired) do
  redis.call('ZREM', KEYS[3], k)
  redis.call('HDEL', KEYS[4], k)
  if redis.call('HEXISTS', KEYS[1], k) == 1 then redis.call('ZADD', KEYS[2], 0, k) end
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
return {redis.call('HLEN', KEYS[1]), #expired, out}
""")

# KEYS: pending, queue, claims, owners, seq. ARGV: consumer, key1, record1, ...
# A written record leaves the pending hash only if it is still the latest;
# a newer one goes back into the queue.
_WB_ACK = _Script("wb_ack", """
local done = 0
for i = 2, #ARGV, 2 do
  local k, rec = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[1], k)
  if redis.call('HGET', KEYS[4], k) == ARGV[1] then
    redis.call('ZREM', KEYS[3], k)
    redis.call('HDEL', KEYS[4], k)
    if cur == rec then
      redis.call('HDEL', KEYS[1], k)
      done = done + 1
    elseif cur then
      redis.call('ZADD', KEYS[2], 'NX', redis.call('INCR', KEYS[5]), k)
    end
  elseif cur == rec then
    redis.call('HDEL', KEYS[1], k)
    done = done + 1
  end
end
return {done, redis.call('HLEN', KEYS[1])}
""")

# KEYS: claims, owners. ARGV: consumer, lease ms, keys...  -> keys still held
_WB_RENEW = _Script("wb_renew", """
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local held = {}
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i])
    held[#held + 1] = ARGV[i]
  end
end
return held
""")

# KEYS: pending, queue, claims, owners. ARGV: consumer, keys...
_WB_RELEASE = _Script("wb_release", """
for i = 2, #ARGV do
  local k = ARGV[i]
  if redis.call('HGET', KEYS[4], k) == ARGV[1] then
    redis.call('ZREM', KEYS[3], k)
    redis.call('HDEL', KEYS[4], k)
    if redis.call('HEXISTS', KEYS[1], k) == 1 then redis.call('ZADD', KEYS[2], 0, k) end
  end
end
return 1
""")

_SCRIPTS = (_PUT, _REMOVE, _UNLOCK, _WB_CLAIM, _WB_ACK, _WB_RENEW, _WB_RELEASE)

# a script call blocks the server while it runs: batches go in chunks
_CHUNK = 1000


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore(Store):
    """A store on Redis over a redis-py client you build (so AUTH, TLS, ACL
    users, Sentinel and timeouts are yours to set), or from a URL.

    :param client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` with
        ``decode_responses=False``.
    :param namespace: the prefix of every key (no braces).
    :param serializer: "json" (default), "pickle" (with ``secret_key``),
        "raw", or an object with ``dumps``/``loads``.
    :param secret_key: the HMAC key of the pickle serializer.
    :param default_ttl: seconds an entry lives when ``set`` gives no TTL.
    :param circuit_breaker: seconds to fail fast after Redis was unreachable
        before trying it again; None to always try.
    :param publish_invalidations: publish the keys of every write on the
        namespace's channel, for near caches in other processes.
    """

    def __init__(self, client: Any, *, namespace: str = "corecache", serializer: Any = "json",
                 secret_key: Any = None, default_ttl: Optional[float] = None,
                 circuit_breaker: Optional[float] = 1.0,
                 publish_invalidations: bool = True) -> None:
        if redis is None:
            raise ImportError("RedisStore needs redis-py: pip install 'corecache[redis]'")
        super().__init__(namespace=namespace, serializer=serializer, secret_key=secret_key,
                         default_ttl=default_ttl)
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
        self._breaker = check_seconds(circuit_breaker, "circuit_breaker", allow_inf=False)
        if not isinstance(publish_invalidations, bool):
            raise TypeError(f"publish_invalidations must be a bool, got {publish_invalidations!r}")
        self._client = client
        self._owns_client = False
        self._execute = client.execute_command
        ns = self._namespace
        self._prefix = ns + ":"
        self._channel = ns + "#inv"
        self._publish = self._channel if publish_invalidations else ""
        wb = f"{ns}#wb:{{{ns}}}:"
        self._wb_keys = [wb + "pending", wb + "queue", wb + "claims", wb + "owners", wb + "seq"]
        self._wb_enqueue_script = _Script(
            "wb_enqueue", _WB_ENQUEUE_SRC.replace("@CHANNEL@", _lua_string(self._publish)))
        self._scripts = _SCRIPTS + (self._wb_enqueue_script,)
        self._down_until = 0.0
        self._last_failure: Optional[BaseException] = None
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
        defaults: 2 s socket and connect timeouts, one quick retry.  Other
        keyword arguments go to the client."""
        if redis is None:
            raise ImportError("RedisStore needs redis-py: pip install 'corecache[redis]'")
        client_kwargs.setdefault("socket_timeout", 2.0)
        client_kwargs.setdefault("socket_connect_timeout", 2.0)
        client_kwargs.setdefault("retry", Retry(ExponentialBackoff(cap=0.05, base=0.005), 1))
        if cluster:
            from redis.cluster import RedisCluster
            client = RedisCluster.from_url(url, **client_kwargs)
        else:
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

    def __repr__(self) -> str:
        kind = "cluster" if self._cluster else "single node"
        return f"RedisStore(namespace={self._namespace!r}, {kind}, serializer={self._serializer!r})"

    def close(self) -> None:
        """Stop invalidation listeners; close the client if the store built it."""
        self._closed = True
        for listener in list(self._listeners):
            listener.close()
        if self._owns_client:
            self._client.close()

    # ---- failures ----------------------------------------------------------

    def _check(self) -> None:
        if monotonic() < self._down_until:
            raise StoreUnavailable(
                f"Redis is unreachable (circuit breaker open for {self._breaker}s after: "
                f"{self._last_failure!r})")
        self._down_until = 0.0   # half-open: the next call tries Redis again

    def _failed(self, exc: BaseException) -> StoreError:
        if isinstance(exc, _UNAVAILABLE):
            self._last_failure = exc
            if self._breaker is not None:
                self._down_until = monotonic() + self._breaker
            return StoreUnavailable(f"Redis is unreachable: {type(exc).__name__}: {exc}")
        return StoreError(f"Redis failed: {type(exc).__name__}: {exc}")

    def _run(self, fn: Callable[[], Any]) -> Any:
        """fn() with the breaker, error mapping, and one retry after loading
        the scripts (after a restart or a failover the server has none)."""
        if self._down_until:
            self._check()
        try:
            try:
                return fn()
            except NoScriptError:
                self._load_scripts()
                return fn()
        except _ERRORS as exc:
            raise self._failed(exc) from exc

    def _load_scripts(self) -> None:
        if self._cluster:   # SCRIPT LOAD goes to every master
            for script in self._scripts:
                self._client.script_load(script.source)
            return
        pipe = self._pipeline()
        for script in self._scripts:
            pipe.execute_command("SCRIPT", "LOAD", script.source)
        pipe.execute()

    def _script(self, script: _Script, keys: List[str], args: List[Any]) -> Any:
        return self._run(lambda: self._execute("EVALSHA", script.sha, len(keys), *keys, *args))

    def _pipeline(self) -> Any:
        return self._client.pipeline(transaction=False)

    def _by_slot(self, rkeys: List[str]) -> Dict[int, List[int]]:
        groups: Dict[int, List[int]] = {}
        keyslot = self._client.keyslot
        for i, k in enumerate(rkeys):
            groups.setdefault(keyslot(k), []).append(i)
        return groups

    def ping(self) -> bool:
        """True if Redis answers (through the breaker)."""
        return bool(self._run(lambda: self._client.ping()))

    # ---- values ------------------------------------------------------------

    def _fetch(self, key: str) -> Optional[bytes]:
        if self._down_until:
            self._check()
        try:
            return self._execute("GET", self._prefix + key)  # type: ignore[no-any-return]
        except _ERRORS as exc:
            raise self._failed(exc) from exc

    def _fetch_many(self, keys: List[str]) -> List[Optional[bytes]]:
        prefix = self._prefix
        rkeys = [prefix + k for k in keys]
        if not self._cluster:
            return self._run(lambda: self._execute("MGET", *rkeys))  # type: ignore[no-any-return]
        groups = self._by_slot(rkeys)

        def batch() -> List[Optional[bytes]]:
            pipe = self._pipeline()
            for idxs in groups.values():
                pipe.execute_command("MGET", *[rkeys[i] for i in idxs])
            out: List[Optional[bytes]] = [None] * len(rkeys)
            for idxs, values in zip(groups.values(), pipe.execute()):
                for i, v in zip(idxs, values):
                    out[i] = v
            return out
        return self._run(batch)  # type: ignore[no-any-return]

    def _fetch_ttl(self, key: str) -> Tuple[Optional[bytes], Optional[float]]:
        rkey = self._prefix + key

        def both() -> Any:
            pipe = self._pipeline()
            pipe.execute_command("GET", rkey)
            pipe.execute_command("PTTL", rkey)
            return pipe.execute()
        data, pttl = self._run(both)
        if data is None:
            return None, None
        return data, (None if pttl is None or pttl < 0 else pttl / 1000.0)

    def _fetch_ttls(self, keys: List[str]) -> Dict[str, Optional[float]]:
        prefix = self._prefix

        def batch() -> Any:
            pipe = self._pipeline()
            for k in keys:
                pipe.execute_command("PTTL", prefix + k)
            return pipe.execute()
        out: Dict[str, Optional[float]] = {}
        for k, pttl in zip(keys, self._run(batch)):
            if pttl is not None and pttl != -2:
                out[k] = None if pttl < 0 else pttl / 1000.0
        return out

    def _message(self, origin: Optional[str], keys: Optional[List[str]]) -> bytes:
        return invalidation_message(origin, keys) if self._publish else b""

    def _put(self, key: str, data: bytes, ttl: Optional[int], origin: Optional[str]) -> None:
        rkey = self._prefix + key
        if not self._publish:
            if ttl is None:
                self._run(lambda: self._execute("SET", rkey, data))
            else:
                self._run(lambda: self._execute("SET", rkey, data, "PX", ttl))
            return
        self._script(_PUT, [rkey], [ttl or 0, self._publish, self._message(origin, [key]), data])

    def _put_many(self, items: List[Tuple[str, bytes]], ttl: Optional[int],
                  origin: Optional[str]) -> None:
        prefix = self._prefix
        if self._cluster:
            def batch() -> None:
                pipe = self._pipeline()
                for k, data in items:
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
        if not self._publish and ttl is None and len(items) <= _CHUNK:
            flat: List[Any] = []
            for k, data in items:
                flat += (prefix + k, data)
            self._run(lambda: self._execute("MSET", *flat))
            return
        chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
        msg = self._message(origin, [k for k, _ in items])

        def scripts() -> None:
            pipe = self._pipeline()
            for n, chunk in enumerate(chunks):
                last = n == len(chunks) - 1   # one message, after every write
                pipe.execute_command(
                    "EVALSHA", _PUT.sha, len(chunk), *[prefix + k for k, _ in chunk],
                    ttl or 0, self._publish if last else "", msg if last else b"",
                    *[d for _, d in chunk])
            pipe.execute()
        self._run(scripts)

    def _remove(self, key: str, origin: Optional[str]) -> bool:
        rkey = self._prefix + key
        if not self._publish:
            return bool(self._run(lambda: self._execute("DEL", rkey)))
        return bool(self._script(_REMOVE, [rkey], [self._publish, self._message(origin, [key])]))

    def _remove_many(self, keys: List[str], origin: Optional[str]) -> int:
        rkeys = [self._prefix + k for k in keys]
        msg = self._message(origin, keys)
        if self._cluster:
            groups = self._by_slot(rkeys)

            def batch() -> int:
                pipe = self._pipeline()
                for idxs in groups.values():
                    pipe.execute_command("DEL", *[rkeys[i] for i in idxs])
                return sum(pipe.execute())
            n = self._run(batch)
            if self._publish:
                self._run(lambda: self._client.publish(self._publish, msg))
            return n  # type: ignore[no-any-return]
        chunks = [rkeys[i:i + _CHUNK] for i in range(0, len(rkeys), _CHUNK)]

        def scripts() -> int:
            pipe = self._pipeline()
            for n, chunk in enumerate(chunks):
                last = n == len(chunks) - 1
                pipe.execute_command("EVALSHA", _REMOVE.sha, len(chunk), *chunk,
                                     self._publish if last else "", msg if last else b"")
            return sum(pipe.execute())
        return self._run(scripts)  # type: ignore[no-any-return]

    def clear(self) -> None:
        """Remove every value of this namespace (SCAN + UNLINK), and tell the
        near caches to drop everything."""
        pattern = _glob_escape(self._prefix) + "*"

        def scan() -> None:
            batch: List[Any] = []
            for k in self._client.scan_iter(match=pattern, count=1000):
                batch.append(k)
                if len(batch) >= 1000:
                    self._unlink(batch)
                    batch = []
            if batch:
                self._unlink(batch)
        self._run(scan)
        if self._publish:
            msg = invalidation_message(None, None)
            self._run(lambda: self._client.publish(self._publish, msg))

    def _unlink(self, rkeys: List[Any]) -> None:
        if not self._cluster:
            self._execute("UNLINK", *rkeys)
            return
        pipe = self._pipeline()
        for k in rkeys:
            pipe.execute_command("UNLINK", k)
        pipe.execute()

    # ---- locks -------------------------------------------------------------

    def _lock_key(self, kind: str, key: str) -> str:
        return f"{self._namespace}#{kind}:{key}"

    def _lock(self, kind: str, key: str, lease: float) -> Optional[str]:
        token = secrets.token_hex(16)
        lk = self._lock_key(kind, key)
        ms = max(1, math.ceil(lease * 1000))
        ok = self._run(lambda: self._execute("SET", lk, token, "NX", "PX", ms))
        return token if ok else None

    def _unlock(self, kind: str, key: str, token: str) -> bool:
        return bool(self._script(_UNLOCK, [self._lock_key(kind, key)], [token]))

    def _lock_many(self, kind: str, keys: List[str], lease: float) -> Dict[str, str]:
        ms = max(1, math.ceil(lease * 1000))
        tokens = [secrets.token_hex(16) for _ in keys]

        def batch() -> Any:
            pipe = self._pipeline()
            for k, t in zip(keys, tokens):
                pipe.execute_command("SET", self._lock_key(kind, k), t, "NX", "PX", ms)
            return pipe.execute()
        results = self._run(batch)
        return {k: t for k, t, ok in zip(keys, tokens, results) if ok}

    def _unlock_many(self, kind: str, tokens: Dict[str, str]) -> None:
        if not tokens:
            return
        lks = [self._lock_key(kind, k) for k in tokens]
        values = list(tokens.values())
        if not self._cluster:
            self._script(_UNLOCK, lks, values)
            return

        def batch() -> None:
            pipe = self._pipeline()
            for lk, t in zip(lks, values):
                pipe.execute_command("EVALSHA", _UNLOCK.sha, 1, lk, t)
            pipe.execute()
        self._run(batch)

    def _fetch_locked(self, keys: List[str]) -> Tuple[List[Optional[bytes]], List[bool]]:
        rkeys = [self._prefix + k for k in keys]
        lks = [self._lock_key("load", k) for k in keys]

        def batch() -> Any:
            pipe = self._pipeline()
            if self._cluster:
                for rk, lk in zip(rkeys, lks):
                    pipe.execute_command("GET", rk)
                    pipe.execute_command("EXISTS", lk)
                r = pipe.execute()
                return r[0::2], [bool(x) for x in r[1::2]]
            pipe.execute_command("MGET", *rkeys)
            pipe.execute_command("MGET", *lks)
            datas, held = pipe.execute()
            return datas, [x is not None for x in held]
        return self._run(batch)  # type: ignore[no-any-return]

    # ---- write-behind queue ------------------------------------------------

    def _wb_enqueue(self, key: str, record: bytes, ttl: Optional[int], max_pending: int,
                    origin: Optional[str]) -> Tuple[bool, int, bool]:
        p, q, c, _, s = self._wb_keys
        script = self._wb_enqueue_script
        if not self._cluster:
            # one round trip: the durable record, the cached value, the message
            ok, n, new = self._script(script, [p, q, c, s, self._prefix + key],
                                      [key, record, max_pending, ttl or 0, origin or ""])
            return bool(ok), int(n), bool(new)
        # a cluster keeps the queue and the value in different slots: the
        # durable record first, then the cached value (a failure between the
        # two leaves the write queued and the old value dropped, see below)
        ok, n, new = self._script(script, [p, q, c, s],
                                  [key, record, max_pending, 0, "", "0"])
        if ok:
            try:
                if record[:1] == b"v":
                    self._put(key, record[1:], ttl, origin)
                else:
                    self._remove(key, origin)
            except StoreError:
                try:   # never leave the old value shadowing the queued one
                    self._remove(key, origin)
                except StoreError:
                    pass
                raise
        return bool(ok), int(n), bool(new)

    def _wb_claim(self, consumer: str, n: int,
                  lease: float) -> Tuple[List[Tuple[str, bytes]], int, int]:
        p, q, c, o, _ = self._wb_keys
        ms = max(1, math.ceil(lease * 1000))
        pending, reclaimed, flat = self._script(_WB_CLAIM, [p, q, c, o], [consumer, n, ms])
        items = [(_s(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]
        return items, int(pending), int(reclaimed)

    def _wb_ack(self, consumer: str, items: List[Tuple[str, bytes]]) -> Tuple[int, int]:
        args: List[Any] = [consumer]
        for k, record in items:
            args += (k, record)
        done, pending = self._script(_WB_ACK, self._wb_keys, args)
        return int(done), int(pending)

    def _wb_renew(self, consumer: str, keys: List[str], lease: float) -> List[str]:
        _, _, c, o, _ = self._wb_keys
        ms = max(1, math.ceil(lease * 1000))
        held = self._script(_WB_RENEW, [c, o], [consumer, ms, *keys])
        return [_s(k) for k in held]

    def _wb_release(self, consumer: str, keys: List[str]) -> None:
        if keys:
            self._script(_WB_RELEASE, self._wb_keys[:4], [consumer, *keys])

    def _wb_records(self, keys: List[str]) -> List[Optional[bytes]]:
        if not keys:
            return []
        p = self._wb_keys[0]
        return self._run(lambda: self._execute("HMGET", p, *keys))  # type: ignore[no-any-return]

    def _wb_count(self) -> int:
        p = self._wb_keys[0]
        return int(self._run(lambda: self._execute("HLEN", p)))

    # ---- invalidation ------------------------------------------------------

    def _subscribe(self, callback: Callable[..., None], *, heartbeat: float = 1.0) -> Any:
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
            pool = nodes[attempt % len(nodes)].redis_connection.connection_pool
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
