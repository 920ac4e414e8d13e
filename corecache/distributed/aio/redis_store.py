# asyncio source of corecache/distributed/redis_store.py (generated from it by _unasync.py)
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

import json
from time import monotonic
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ...config import check_seconds
from ...exceptions import StoreError, StoreUnavailable
from .._protocol import (DONE_LIST_TTL, FENCE_WINDOW_LEASES, LOCK_FAILURE_TTL,
                         invalidation_message, lease_ms, log, parse_done, parse_invalidation)
from .._redis_common import (_CHUNK, _ERRORS, _FILL, _LOCK, _PUT, _QUEUE_ACK, _QUEUE_CLAIM,
                             _QUEUE_HOLD, _QUEUE_PUSH_SRC, _QUEUE_RELEASE, _QUEUE_SETTLE,
                             _REMOVE, _RENEW, _SCRIPTS, _UNAVAILABLE, _UNLOCK, HAVE_REDIS,
                             MIGRATION_WAIT, CircuitBreaker, ExponentialBackoff, NoBackoff,
                             NoScriptError, _glob_escape, _hash_tag, _lua_string, _migrating,
                             _RConnectionError, _s, _Script, _slot_tag, key_slot)
from ._io import Event, NodeClients, Worker, discard, sleep
from .stores import Store

if HAVE_REDIS:
    import redis.asyncio as redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
else:  # the redis extra is not installed
    redis = None  # type: ignore[assignment]

__all__ = ["RedisStore", "CircuitBreaker"]


class RedisStore(Store):
    """A store on Redis over a redis-py client you build (so AUTH, TLS, ACL
    users, Sentinel and timeouts are yours to set), or from a URL.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster`` with
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
        if isinstance(client, RedisCluster):
            self._cluster = True
            kwargs = client.nodes_manager.connection_kwargs
        elif isinstance(client, redis.Redis):
            self._cluster = False
            kwargs = client.connection_pool.connection_kwargs
        else:
            raise TypeError(f"client must be a {redis.__name__}.Redis or RedisCluster, "
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
        self._nodes = NodeClients(client) if self._cluster else None
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
            discard(client)
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

    async def aclose(self) -> None:
        """Stop invalidation listeners and the lease keeper; close the
        client if the store built it."""
        self._closed = True
        await super().aclose()
        for listener in list(self._listeners):
            await listener.aclose()
        if self._nodes is not None:
            await self._nodes.aclose()
        if self._owns_client:
            await self._client.aclose()

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

    async def _run(self, fn: Callable[[], Any], *, wait_migration: bool = False) -> Any:
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
                        if self._nodes is not None:
                            await self._nodes.ready()
                        result = await fn()
                    except NoScriptError:
                        await self._load_scripts()
                        result = await fn()
                    break
                except _ERRORS as exc:
                    if not (wait_migration and self._cluster and _migrating(exc)):
                        raise
                    now = monotonic()
                    if deadline is None:
                        deadline = now + MIGRATION_WAIT
                    if now >= deadline:
                        raise
                    await sleep(min(delay, deadline - now))
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

    async def _load_scripts(self) -> None:
        if self._cluster:   # SCRIPT LOAD goes to every master
            for node in self._client.get_primaries():
                conn = self._nodes.get(node)
                for script in self._scripts:
                    await conn.script_load(script.source)
            return
        pipe = self._pipeline()
        for script in self._scripts:
            pipe.execute_command("SCRIPT", "LOAD", script.source)
        await pipe.execute()

    async def _script(self, script: _Script, keys: List[str], args: Sequence[Any], *,
                wait_migration: bool = False) -> Any:
        return await self._run(lambda: self._execute("EVALSHA", script.sha, len(keys), *keys,
                                                     *args),
                         wait_migration=wait_migration)

    async def _queue_script(self, script: _Script, keys: List[str], args: Sequence[Any]) -> Any:
        return await self._script(script, keys, args, wait_migration=True)

    def _pipeline(self) -> Any:
        return self._client.pipeline(transaction=False)

    def _by_node(self, route: List[str]) -> Dict[Any, List[int]]:
        """Indexes of route keys grouped by the node serving their slot."""
        groups: Dict[Any, List[int]] = {}
        node_of = self._client.get_node_from_key
        for i, k in enumerate(route):
            groups.setdefault(node_of(k), []).append(i)
        return groups

    async def _on_nodes(self, commands: List[Tuple[str, Tuple[Any, ...]]]) -> List[Any]:
        """Cluster: each (route key, command) sent to the node serving its
        slot, in one pipeline per node, with no redirection followed: a
        command whose slot moved or is migrating gets its error as result
        (the caller decides).  Order is kept within a node."""
        groups = self._by_node([r for r, _ in commands])
        out: List[Any] = [None] * len(commands)
        for node, idxs in groups.items():
            conn = self._nodes.get(node)
            for attempt in (0, 1):
                pipe = conn.pipeline(transaction=False)
                for i in idxs:
                    pipe.execute_command(*commands[i][1])
                results = await pipe.execute(raise_on_error=False)
                if attempt == 0 and any(isinstance(r, NoScriptError) for r in results):
                    for script in self._scripts:
                        await conn.script_load(script.source)
                    continue
                break
            for i, r in zip(idxs, results):
                out[i] = r
        return out

    async def ping(self) -> bool:
        """True if Redis answers (through the breaker)."""
        return bool(await self._run(lambda: self._client.ping()))

    # ---- values ------------------------------------------------------------

    async def fetch(self, key: str) -> Optional[bytes]:
        breaker = self._breaker
        if breaker is not None and breaker.tripped:
            return await self._run(lambda: self._execute("GET", self._prefix + key))  # type: ignore
        try:
            return await self._execute("GET", self._prefix + key)  # type: ignore[no-any-return]
        except _ERRORS as exc:
            raise self._failed(exc, False) from exc

    async def _cluster_reads(self, keys: List[str], ttl: bool) -> Tuple[List[Any], List[Any]]:
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
        results = await self._on_nodes(commands)
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
                    datas[i] = await self._execute("GET", rkeys[i])
                    if ttl:
                        lefts[i] = await self._execute("PTTL", rkeys[i])
                continue
            for j, i in enumerate(idxs):
                datas[i] = got[0][j]
                if ttl:
                    lefts[i] = got[1 + j]
        return datas, lefts

    async def fetch_many(self, keys: List[str]) -> List[Optional[bytes]]:
        if not keys:
            return []
        if self._cluster:
            async def reads() -> Any:
                return (await self._cluster_reads(keys, False))[0]
            return await self._run(reads)  # type: ignore[no-any-return]
        rkeys = [self._prefix + k for k in keys]
        return await self._run(lambda: self._execute("MGET", *rkeys))  # type: ignore[no-any-return]

    async def fetch_ttl(self, key: str) -> Tuple[Optional[bytes], Optional[float]]:
        datas, lefts = await self.fetch_many_ttl([key])
        return datas[0], lefts[0]

    async def fetch_many_ttl(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                        List[Optional[float]]]:
        if not keys:
            return [], []
        if self._cluster:
            datas, pttls = await self._run(lambda: self._cluster_reads(keys, True))
        else:
            rkeys = [self._prefix + k for k in keys]

            async def batch() -> Any:
                pipe = self._pipeline()
                pipe.execute_command("MGET", *rkeys)
                for rk in rkeys:
                    pipe.execute_command("PTTL", rk)
                r = await pipe.execute()
                return r[0], r[1:]
            datas, pttls = await self._run(batch)
        lefts = [None if d is None or p is None or p < 0 else p / 1000.0
                 for d, p in zip(datas, pttls)]
        return list(datas), lefts

    def _message(self, origin: Optional[str], keys: Optional[List[str]]) -> bytes:
        return invalidation_message(origin, keys) if self._publish else b""

    async def put(self, key: str, data: bytes, ttl: Optional[int], origin: Optional[str]) -> None:
        await self.put_many([(key, data)], ttl, origin)

    async def put_many(self, items: List[Tuple[str, bytes]], ttl: Optional[int],
                 origin: Optional[str]) -> None:
        prefix = self._prefix
        if self._cluster:
            async def batch() -> None:
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
                await pipe.execute()
            await self._run(batch)
            if self._publish:
                msg = self._message(origin, [k for k, _ in items])
                await self._run(lambda: self._client.publish(self._publish, msg))
            return
        chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
        msg = self._message(origin, [k for k, _ in items])

        async def scripts() -> None:
            pipe = self._pipeline()
            for n, chunk in enumerate(chunks):
                last = n == len(chunks) - 1   # one message, after every write
                pipe.execute_command(
                    "EVALSHA", _PUT.sha, 2 * len(chunk), *[prefix + k for k, _ in chunk],
                    *[self._lock_prefix + k for k, _ in chunk],
                    ttl or 0, self._publish if last else "", msg if last else b"",
                    *[d for _, d in chunk])
            await pipe.execute()
        if len(chunks) == 1:
            chunk = chunks[0]
            await self._script(_PUT, [prefix + k for k, _ in chunk]
                         + [self._lock_prefix + k for k, _ in chunk],
                         [ttl or 0, self._publish, msg, *[d for _, d in chunk]])
            return
        await self._run(scripts)

    async def remove(self, key: str, origin: Optional[str]) -> bool:
        return await self.remove_many([key], origin) > 0

    async def remove_many(self, keys: List[str], origin: Optional[str]) -> int:
        rkeys = [self._prefix + k for k in keys]
        msg = self._message(origin, keys)
        if self._cluster:
            async def batch() -> int:
                pipe = self._pipeline()
                for k, rk in zip(keys, rkeys):
                    pipe.execute_command("SET", self.lock_key(k), "p", "XX", "KEEPTTL")
                    pipe.execute_command("DEL", rk)
                return sum((await pipe.execute())[1::2])
            n = await self._run(batch)
            if self._publish:
                await self._run(lambda: self._client.publish(self._publish, msg))
            return n  # type: ignore[no-any-return]
        lks = [self._lock_prefix + k for k in keys]
        if len(keys) <= _CHUNK:
            return int(await self._script(_REMOVE, rkeys + lks, [self._publish, msg]))
        chunks = [(rkeys[i:i + _CHUNK], lks[i:i + _CHUNK]) for i in range(0, len(rkeys), _CHUNK)]

        async def scripts() -> int:
            pipe = self._pipeline()
            for n, (rs, ls) in enumerate(chunks):
                last = n == len(chunks) - 1
                pipe.execute_command("EVALSHA", _REMOVE.sha, 2 * len(rs), *rs, *ls,
                                     self._publish if last else "", msg if last else b"")
            return sum(await pipe.execute())
        return await self._run(scripts)  # type: ignore[no-any-return]

    async def clear(self) -> None:
        """Remove every value of this namespace (SCAN + UNLINK), cancel the
        fills in flight, and tell the near caches to drop everything."""
        values = _glob_escape(self._prefix) + "*"
        locks = _glob_escape(self._lock_prefix) + "*"

        async def scan(pattern: str, act: Callable[[List[Any]], Any]) -> None:
            batch: List[Any] = []
            async for k in self._client.scan_iter(match=pattern, count=1000):
                batch.append(k)
                if len(batch) >= 1000:
                    await act(batch)
                    batch = []
            if batch:
                await act(batch)
        await self._run(lambda: scan(locks, self._poison_all))
        await self._run(lambda: scan(values, self._unlink))
        if self._publish:
            msg = invalidation_message(None, None)
            await self._run(lambda: self._client.publish(self._publish, msg))

    async def _poison_all(self, lks: List[Any]) -> None:
        pipe = self._pipeline()
        for k in lks:
            pipe.execute_command("SET", k, "p", "XX", "KEEPTTL")
        await pipe.execute()

    async def _unlink(self, rkeys: List[Any]) -> None:
        if not self._cluster:
            await self._execute("UNLINK", *rkeys)
            return
        pipe = self._pipeline()
        for k in rkeys:
            pipe.execute_command("UNLINK", k)
        await pipe.execute()

    # ---- fill locks --------------------------------------------------------

    async def lock(self, key: str, token: str, lease: float) -> bool:
        ms = lease_ms(lease)
        return bool((await self._script(_LOCK, [self.lock_key(key)], [token, ms]))[0])

    async def lock_many(self, keys: List[str], token: str, lease: float) -> List[str]:
        if not keys:
            return []
        ms = lease_ms(lease)
        if not self._cluster:
            got = await self._script(_LOCK, [self.lock_key(k) for k in keys], [token, ms])
            return [k for k, ok in zip(keys, got) if ok]

        async def batch() -> Any:
            pipe = self._pipeline()
            for k in keys:
                pipe.execute_command("EVALSHA", _LOCK.sha, 1, self.lock_key(k), token, ms)
            return await pipe.execute()
        return [k for k, ok in zip(keys, await self._run(batch)) if ok[0]]

    async def renew(self, items: List[Tuple[str, str]], lease: float) -> None:
        if not items:
            return
        ms = lease_ms(lease)
        if not self._cluster:
            await self._script(_RENEW, [self.lock_key(k) for k, _ in items],
                         [ms, *[t for _, t in items]])
            return

        async def batch() -> None:
            pipe = self._pipeline()
            for k, t in items:
                pipe.execute_command("EVALSHA", _RENEW.sha, 1, self.lock_key(k), ms, t)
            await pipe.execute()
        await self._run(batch)

    async def lock_state(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                    List[Optional[str]]]:
        rkeys = [self._prefix + k for k in keys]
        lks = [self.lock_key(k) for k in keys]

        async def batch() -> Any:
            pipe = self._pipeline()
            if self._cluster:   # single-key commands: they follow redirections
                for rk, lk in zip(rkeys, lks):
                    pipe.execute_command("GET", rk)
                    pipe.execute_command("GET", lk)
                r = await pipe.execute()
                return r[0::2], r[1::2]
            pipe.execute_command("MGET", *rkeys)
            pipe.execute_command("MGET", *lks)
            return await pipe.execute()
        datas, states = await self._run(batch)
        return list(datas), [None if s is None else _s(s) for s in states]

    async def fill(self, key: str, data: bytes, ttl: Optional[int], token: str,
             origin: Optional[str], expect: Optional[str] = None) -> bool:
        return bool(await self._fill([(key, data, expect)], ttl, token, origin))

    async def fill_many(self, items: List[Tuple[str, bytes, Optional[str]]], ttl: Optional[int],
                  token: str, origin: Optional[str]) -> List[str]:
        return await self._fill(items, ttl, token, origin)

    async def _fill(self, items: List[Tuple[str, bytes, Optional[str]]], ttl: Optional[int],
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
                got = await self._script(_FILL, [self._prefix + k for k, _, _ in chunk]
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
        results = await self._run(lambda: self._on_nodes(commands))
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
            await self._run(lambda: self._client.publish(self._publish, msg))
        return stored

    async def unlock(self, key: str, token: str, failure: Optional[str] = None) -> None:
        await self._script(_UNLOCK, [self.lock_key(key)],
                     [token, failure or "", lease_ms(LOCK_FAILURE_TTL)])

    async def unlock_many(self, keys: List[str], token: str) -> None:
        if not keys:
            return
        if not self._cluster:
            await self._script(_UNLOCK, [self.lock_key(k) for k in keys], [token, "", 1])
            return

        async def batch() -> None:
            pipe = self._pipeline()
            for k in keys:
                pipe.execute_command("EVALSHA", _UNLOCK.sha, 1, self.lock_key(k), token, "", 1)
            await pipe.execute()
        await self._run(batch)

    # ---- write-behind queue ------------------------------------------------

    async def queue_push(self, key: str, body: bytes, ttl: Optional[int], max_pending: int,
                   origin: str) -> Tuple[Optional[bytes], int, bool]:
        script = self._queue_push_script
        queue_keys = [self._k_pending, self._k_queue, self._k_claims, self._k_clock]
        tail = [self._done_prefix, self._done_ttl]
        if not self._cluster:
            # one round trip: the durable record, the cached value, the message
            ok, n, new, record = await self._queue_script(
                script, queue_keys + [self._prefix + key, self.lock_key(key)],
                [key, body, max_pending, ttl or 0, origin] + tail)
            return (record if ok else None), int(n), bool(new)
        # a cluster keeps the queue and the value in different slots: the
        # durable record first, then the cached value (a failure between the
        # two leaves the write queued and the old value dropped, see below)
        ok, n, new, record = await self._queue_script(
            script, queue_keys, [key, body, max_pending, 0, origin] + tail + ["0"])
        if ok:
            try:
                if body[:1] == b"v":
                    await self.put(key, body[1:], ttl, origin)
                else:
                    await self.remove(key, origin)
            except StoreError:
                try:   # never leave the old value shadowing the queued one
                    await self.remove(key, origin)
                except StoreError:
                    pass
                raise
        return (record if ok else None), int(n), bool(new)

    async def queue_claim(self, consumer: str, n: int, lease: float
                    ) -> Tuple[List[Tuple[str, bytes]], int, int, List[Tuple[int, str]]]:
        window = lease_ms(lease * FENCE_WINDOW_LEASES)
        pending, reclaimed, flat, done = await self._queue_script(
            _QUEUE_CLAIM, [self._k_pending, self._k_queue, self._k_claims, self._k_owners,
                           self._k_kept, self._k_kept_until, self._done_key(consumer)],
            [consumer, n, lease_ms(lease), window])
        items = [(_s(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]
        return items, int(pending), int(reclaimed), [parse_done(e) for e in done]

    async def queue_hold(self, consumer: str, keys: List[str], lease: float,
                   abandon: bool = False) -> List[str]:
        if not keys:
            return []
        held = await self._queue_script(
            _QUEUE_HOLD, [self._k_claims, self._k_owners, self._k_kept, self._k_kept_until],
            [consumer, lease_ms(lease), "1" if abandon else "0", *keys])
        return [_s(k) for k in held]

    async def queue_ack(self, consumer: str, items: List[Tuple[str, bytes]]
                  ) -> Tuple[Dict[str, str], int]:
        args: List[Any] = [consumer, self._done_prefix, self._done_ttl]
        for k, record in items:
            args += (k, record)
        statuses, pending = await self._queue_script(
            _QUEUE_ACK, [self._k_pending, self._k_queue, self._k_claims, self._k_owners,
                         self._k_clock, self._k_kept, self._k_kept_until], args)
        return {k: _s(st) for (k, _), st in zip(items, statuses)}, int(pending)

    async def queue_release(self, consumer: str, keys: List[str], final: bool = False) -> None:
        if keys or final:
            await self._queue_script(
                _QUEUE_RELEASE, [self._k_pending, self._k_queue, self._k_claims,
                                 self._k_owners, self._done_key(consumer)],
                [consumer, "1" if final else "0", *keys])

    async def queue_settle(self, origin: str, keys: List[str]
                     ) -> Tuple[List[Tuple[int, str]], List[Optional[bytes]]]:
        done, records = await self._queue_script(
            _QUEUE_SETTLE, [self._k_pending, self._done_key(origin)], keys)
        return [parse_done(e) for e in done], list(records)

    async def queue_records(self, keys: List[str]) -> List[Optional[bytes]]:
        if not keys:
            return []
        p = self._k_pending
        return await self._run(lambda: self._execute("HMGET", p, *keys),  # type: ignore
                         wait_migration=True)

    async def queue_count(self) -> int:
        p = self._k_pending
        return int(await self._run(lambda: self._execute("HLEN", p), wait_migration=True))

    async def _durability(self) -> Optional[str]:
        """Why the queue would not survive a restart of the Redis server
        that holds it (no AOF and no replica), or None."""
        async def ask() -> Tuple[dict, dict]:
            if self._cluster:
                conn = self._nodes.get(self._client.get_node_from_key(self._k_pending))
            else:
                conn = self._client
            return await conn.info("persistence"), await conn.info("replication")
        try:
            persistence, replication = await self._run(ask)
        except StoreError:
            return None
        if int(persistence.get("aof_enabled", 0)) or int(replication.get("connected_slaves", 0)):
            return None
        return (f"the write-behind queue of namespace {self._namespace!r} lives on a Redis "
                f"server without an append-only file (appendonly no) and without a replica: "
                f"a restart or a crash of that server loses the writes queued since its last "
                f"snapshot, if any (flush() and aclose() then raise WritesLostError naming "
                f"them). Run it with appendonly yes, or with a replica.")

    # ---- invalidation ------------------------------------------------------

    def subscribe(self, callback: Callable[..., None], *, heartbeat: float = 1.0) -> Any:
        listener = _Listener(self, callback, heartbeat)
        self._listeners.append(listener)
        return listener

    def _subscriber_client(self, attempt: int) -> Any:
        """A client of its own for the subscription, that never retries (a
        lost connection must show at once, not after redis-py's retries) and
        speaks RESP2 (tracking invalidations then arrive as messages of the
        subscription, on the same connection)."""
        if self._cluster:
            # PUBLISH reaches every node of a cluster: any master will do
            nodes = self._client.get_primaries()
            pool = self._nodes.get(nodes[attempt % len(nodes)]).connection_pool
        else:
            pool = self._client.connection_pool
        kwargs = {k: v for k, v in pool.connection_kwargs.items()
                  if not k.startswith("maint_notifications")}   # RESP3 only (redis-py 7+)
        kwargs["retry"] = Retry(NoBackoff(), 0)
        kwargs["protocol"] = 2
        return redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, **kwargs))


# Redis sends the keys a tracked client must drop on this channel (RESP2)
TRACKING_CHANNEL = "__redis__:invalidate"


class _Listener:
    """The invalidation stream of a namespace, on a connection of its own
    (a daemon thread; in aio a task).

    On a single node it turns on Redis's client-side-caching tracking in
    broadcast mode for the namespace's value prefix (``CLIENT TRACKING ON
    REDIRECT <itself> BCAST PREFIX ns:``; Redis 6 and later, Valkey): the
    server then reports every change of a key of the namespace, by anyone
    (a plain SET from another client, ``redis-cli``, a Lua script, an
    expiry, FLUSHALL), as a message on ``__redis__:invalidate``.  It
    subscribes to that and to the namespace's channel, where corecache's
    writers publish (with their origin).  On a cluster (keys on many
    nodes) or a server without tracking, only the channel is heard.

    It reports "up" once subscribed (again), "keys" for each message of the
    channel (with its writer's id), "tracked" for each report of the server
    (no writer's id: it may be this process's own write) and "down" when the
    connection is lost or the server stops answering PING within two
    heartbeats; then it reconnects with backoff until stopped.
    """

    def __init__(self, store: RedisStore, callback: Callable[..., None],
                 heartbeat: float) -> None:
        self._store = store
        self._callback = callback
        self._heartbeat = heartbeat
        self._stop = Event()
        self.up = False
        self.tracking = False     # the server reports every writer's changes
        self._worker = Worker(self._run, f"invalidation-{store.namespace}")
        self._worker.start()

    def ensure(self) -> None:
        self._worker.ensure()

    async def aclose(self, timeout: float = 5.0) -> None:
        self._stop.set()
        await self._worker.join(timeout)
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

    async def _track(self, ps: Any) -> bool:
        """Turn on broadcast tracking of the namespace's keys, redirected to
        this connection (before it subscribes); False where the server has
        none."""
        if self._store.is_cluster:
            return False
        try:
            await ps.execute_command("CLIENT", "ID")
            me = await ps.parse_response(block=True, timeout=self._heartbeat * 2)
            await ps.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", me, "BCAST",
                                     "PREFIX", self._store._prefix)
            answer = await ps.parse_response(block=True, timeout=self._heartbeat * 2)
        except _ERRORS as exc:
            if not isinstance(exc, _UNAVAILABLE):   # an old server, or an ACL
                log.info("corecache: no CLIENT TRACKING on this server (%r): near caches of "
                         "namespace %r see only corecache's writes", exc,
                         self._store.namespace)
                return False
            raise
        if isinstance(answer, Exception):
            return False
        return True

    def _on_tracking(self, data: Any) -> None:
        if data is None:            # FLUSHALL / FLUSHDB: every key
            self._emit("tracked", None, None)
            return
        n = len(self._store._prefix)
        self._emit("tracked", None, [_s(k)[n:] for k in data])

    async def _run(self) -> None:
        attempt = 0
        poll = min(0.1, self._heartbeat / 4)
        channel = self._store._channel.encode()
        while not self._stop.is_set():
            client = ps = None
            try:
                if self._store._nodes is not None:
                    await self._store._nodes.ready()
                client = self._store._subscriber_client(attempt)
                ps = client.pubsub()
                tracking = await self._track(ps)
                channels = [self._store._channel] + ([TRACKING_CHANNEL] if tracking else [])
                await ps.subscribe(*channels)
                waiting = len(channels)
                last_rx = last_ping = monotonic()
                while not self._stop.is_set():
                    msg = await ps.get_message(timeout=poll)
                    now = monotonic()
                    if msg is not None:
                        last_rx = now
                        kind = msg["type"]
                        if kind in ("subscribe", b"subscribe"):
                            waiting -= 1
                            if waiting == 0 and not self.up:
                                self.up = True
                                self.tracking = tracking
                                attempt = 0
                                self._emit("up")
                        elif kind in ("message", b"message"):
                            if msg["channel"] != channel:
                                self._on_tracking(msg["data"])
                                continue
                            try:
                                origin, keys = parse_invalidation(msg["data"])
                            except (ValueError, TypeError, AttributeError):
                                log.warning("corecache: ignoring a malformed invalidation "
                                            "message %r", msg["data"])
                                continue
                            self._emit("keys", origin, keys)
                    if now - last_ping >= self._heartbeat:
                        await ps.ping()
                        last_ping = now
                    if now - last_rx > 2 * self._heartbeat + poll:
                        raise StoreUnavailable("the invalidation channel stopped answering PING")
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.debug("corecache: invalidation stream of namespace %r: %r",
                          self._store.namespace, exc, exc_info=True)
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
                            await thing.aclose()
                        except Exception:
                            pass
                if client is not None:
                    try:
                        await client.connection_pool.disconnect()
                    except Exception:
                        pass
            await self._stop.wait(min(1.0, 0.02 * (2 ** min(attempt, 6))))
        if self.up:
            self.up = False
