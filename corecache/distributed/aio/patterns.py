# asyncio source of corecache/distributed/patterns.py (generated from it by _unasync.py)
"""Read-through, write-through, refresh-ahead and the near cache, plus
warm().  The write-behind cache is in write_behind.py; the read path and
stampede protection they share are in _base.py."""
from __future__ import annotations

import collections
import threading
from time import monotonic
from typing import Any, Callable, Deque, Dict, List, Optional

from ...config import check_callable, check_count, check_seconds
from ...exceptions import CacheWriteError, StoreError
from .._protocol import MISSING, FillGuard, check_local, log, never, sha1, write_key
from ._base import Cache, check_store
from ._io import Event, Worker, call, constructor_wait
from .stores import Store

__all__ = ["NearCache", "ReadThroughCache", "RefreshAheadCache", "WriteThroughCache", "warm"]


class ReadThroughCache(Cache):
    """``get(key)`` answers from the local tier, then the store, then
    ``loader(key)``, filling the tiers on the way back; misses are
    stampede-protected (see Cache).

    :param store: a MemoryStore or RedisStore.
    :param loader: ``loader(key) -> value``; raise KeyError for a key that
        does not exist (``get`` raises it too).
    :param ttl: seconds values live in the store (None: the store's
        default_ttl).
    :param local: an optional corecache.Cache (LRUCache or any policy) as the
        first tier.
    :param loader_many: ``loader_many(keys) -> {key: value}`` for get_many.

    Other keywords: see :class:`Cache` (stampede, lock_lease, lock_wait).
    """

    def __init__(self, store: Store, loader: Callable[[str], Any], *, ttl: Optional[float],
                 local: Any = None, loader_many: Optional[Callable[[List[str]], Any]] = None,
                 **options: Any) -> None:
        if not callable(loader):
            raise TypeError(f"loader must be callable, got {loader!r}")
        super().__init__(store, ttl=ttl, local=local, loader=loader, loader_many=loader_many,
                         **options)


class WriteThroughCache(Cache):
    """``set(key, value)`` writes to the system of record through
    ``writer(key, value)`` first, and to the cache only once that succeeded:
    a failing writer leaves the cache as it was and its exception
    propagates.  If the writer succeeded but the store then fails, the
    cached entry is dropped where possible and CacheWriteError (written=True)
    says so.

    :param writer: ``writer(key, value)``.
    :param writer_many: ``writer_many({key: value})`` for set_many (default:
        writer per key).
    :param deleter: ``deleter(key)``, called by delete() before the cache
        entry goes; without it delete() only evicts the cached copy.
    :param loader: optional ``loader(key)`` for misses.
    """

    def __init__(self, store: Store, writer: Callable[[str, Any], Any], *,
                 ttl: Optional[float], local: Any = None,
                 writer_many: Optional[Callable[[Dict[str, Any]], Any]] = None,
                 deleter: Optional[Callable[[str], Any]] = None,
                 loader: Optional[Callable[[str], Any]] = None,
                 loader_many: Optional[Callable[[List[str]], Any]] = None,
                 **options: Any) -> None:
        if not callable(writer):
            raise TypeError(f"writer must be callable, got {writer!r}")
        self._writer = writer
        self._writer_many = check_callable(writer_many, "writer_many")
        self._deleter = check_callable(deleter, "deleter")
        super().__init__(store, ttl=ttl, local=local, loader=loader, loader_many=loader_many,
                         **options)

    async def _write_record(self, fn: Callable[[], Any], n: int = 1) -> None:
        try:
            await call(fn)
        except BaseException:
            self._c.add("write_errors")
            raise
        self._c.add("writes", n)

    async def _cache_failed(self, keys: List[str], exc: StoreError, what: str) -> CacheWriteError:
        self._c.add("store_errors")
        for k in keys:
            self._invalidate_own(k, None)
            if self._local is not None:
                self._local.pop(k, None)
        try:
            await self._store.remove_many(keys, self._id)
            fate = "the cached entry was removed"
        except StoreError:
            fate = "the cached entry could not be removed either and may be stale until its TTL"
        shown = keys[0] if len(keys) == 1 else keys
        return CacheWriteError(f"the {what} stored {shown!r}, but the cache could not be "
                               f"updated ({exc}); {fate}", key=shown)

    async def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Write value through the writer, then cache it."""
        k = write_key(key)
        ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
        data = self._store.encode(value, k, ms)   # a bad value fails here, before the writer
        await self._write_record(lambda: self._writer(k, value))
        try:
            await self._write(k, data, ms, self._roundtrip(k, data, value), ttl)
        except StoreError as exc:
            raise await self._cache_failed([k], exc, "writer") from exc

    async def set_many(self, mapping: Any, ttl: Optional[float] = None) -> None:
        """Write every (key, value) through writer_many (or writer per key),
        then cache them in one round trip."""
        if not hasattr(mapping, "items"):
            raise TypeError(f"set_many takes a mapping, got {type(mapping).__name__}")
        items = {write_key(k): v for k, v in mapping.items()}
        for k, v in items.items():
            self._store.encode(v, k)
        if not items:
            return
        if self._writer_many is not None:
            await self._write_record(lambda: self._writer_many(dict(items)),  # type: ignore[misc]
                                     len(items))
        else:
            for k, v in items.items():
                await self._write_record(lambda k=k, v=v: self._writer(k, v))
        try:
            await super().set_many(items, ttl)
        except StoreError as exc:
            raise await self._cache_failed(list(items), exc, "writer") from exc

    async def delete(self, key: Any) -> bool:
        """deleter(key) if given, then drop the cached entry."""
        k = write_key(key)
        if self._deleter is not None:
            await self._write_record(lambda: self._deleter(k))  # type: ignore[misc]
        try:
            return await super().delete(k)
        except StoreError as exc:
            if self._deleter is None:
                raise
            raise await self._cache_failed([k], exc, "deleter") from exc


class RefreshAheadCache(Cache):
    """A read-through cache whose hot keys never expire under their readers:
    a read of an entry older than ``refresh_ahead * ttl`` returns the
    current value at once and triggers one background reload of that key,
    once across all processes (the key's fill lock, whose holder first
    checks that nobody refreshed the key meanwhile).  The reloaded value is
    stored only if the key still holds what the refresh saw (or expired)
    and no write came through corecache meanwhile: a refresh never
    overwrites a newer ``set()``.

    :param ttl: seconds values live in the store (required, finite).
    :param refresh_ahead: the fraction of ttl after which a read refreshes
        (0 < refresh_ahead < 1).
    :param workers: background workers doing the reloads (threads; in aio,
        tasks).
    """

    def __init__(self, store: Store, loader: Callable[[str], Any], *, ttl: float,
                 refresh_ahead: float = 0.8, local: Any = None,
                 loader_many: Optional[Callable[[List[str]], Any]] = None,
                 workers: int = 2, **options: Any) -> None:
        if not callable(loader):
            raise TypeError(f"loader must be callable, got {loader!r}")
        seconds = check_seconds(ttl, "ttl", allow_inf=False)
        if seconds is None:
            raise TypeError("ttl must be a positive number of seconds, got None")
        if isinstance(refresh_ahead, bool) or not isinstance(refresh_ahead, (int, float)):
            raise TypeError(f"refresh_ahead must be a number between 0 and 1, "
                            f"got {refresh_ahead!r}")
        if not 0 < refresh_ahead < 1:
            raise ValueError(f"refresh_ahead must be between 0 and 1 (exclusive), "
                             f"got {refresh_ahead!r}")
        n = check_count(workers, "workers")
        if n < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        super().__init__(store, ttl=seconds, local=local, loader=loader,
                         loader_many=loader_many, **options)
        self._ttl = seconds
        # an entry with less than this left is due for a refresh
        self._fresh_for = seconds * (1 - float(refresh_ahead))
        if self._local is not None:   # a local copy never outlives the refresh point
            self._local_ttl = _min_local(self._local.default_ttl, seconds - self._fresh_for)
        self._todo: Deque[str] = collections.deque()
        self._todo_added = Event()
        self._due: set = set()
        self._due_lock = threading.Lock()
        self._workers = [Worker(self._work, f"refresh-{i}") for i in range(n)]
        for w in self._workers:
            w.start()

    async def _lookup(self, key: str) -> Any:
        sent = monotonic()
        data, left = await self._reads.fetch_ttl(key)
        left = self._left(left, sent)
        if data is None:
            return MISSING
        value = self._store.decode(key, data)
        if value is MISSING:
            return MISSING
        if left is None:
            return value, None
        until_due = left - self._fresh_for
        if until_due <= 0:
            self._schedule(key)
            return value, 0          # not into the local tier: reads must see the refresh
        return value, until_due      # the local copy lasts until the entry is due

    async def _lookup_many(self, keys: List[str], count: bool = True) -> Any:
        sent = monotonic()
        datas, lefts = await self._store.fetch_many_ttl(keys)
        lefts = [self._left(left, sent) for left in lefts]
        found = {}
        ttls: Dict[str, Any] = {}
        missing = []
        for k, value, left in zip(keys, self._store.decode_many(keys, datas), lefts):
            if value is MISSING:
                missing.append(k)
                continue
            found[k] = value
            if left is None:
                ttls[k] = None
                continue
            until_due = left - self._fresh_for
            if until_due <= 0:
                self._schedule(k)
                ttls[k] = 0
            else:
                ttls[k] = until_due
        if count:
            if found:
                self._c.add("store_hits", len(found))
            if missing:
                self._c.add("misses", len(missing))
        return found, ttls, missing

    def _schedule(self, key: str) -> None:
        if self._closed:
            return
        with self._due_lock:
            if key in self._due:
                return
            self._due.add(key)
        self._todo.append(key)
        self._todo_added.set()
        for w in self._workers:
            w.ensure()

    async def _work(self) -> None:
        while True:
            try:
                key = self._todo.popleft()
            except IndexError:
                if self._closed:
                    return
                self._todo_added.clear()    # then look again: a later add wakes the wait
                if not self._todo and not self._closed:
                    await self._todo_added.wait(1.0)
                continue
            try:
                await self._refresh(key)
            except Exception:   # counted in _refresh; a worker never dies
                pass
            finally:
                with self._due_lock:
                    self._due.discard(key)

    async def _refresh(self, key: str) -> None:
        store = self._store
        token = self._token()
        try:
            if not await store.lock(key, token, self._lock_lease):
                return   # another process loads or refreshes it
        except StoreError:
            self._c.add("store_errors")
            return
        store.keep(key, token, self._lock_lease)
        released = False
        try:
            try:   # refreshed meanwhile (its lock released already)?
                seen, left = await store.fetch_ttl(key)
            except StoreError:
                self._c.add("store_errors")
                return
            if seen is not None and left is not None and left > self._fresh_for:
                return
            try:
                data, value = await self._load_value(
                    key, lambda: self._loader(key))  # type: ignore[misc]
            except Exception as exc:
                self._c.add("refresh_errors")
                log.warning("corecache: refreshing key %r failed: %r (the current value "
                            "stays until it expires)", key, exc)
                return
            ticket = self._begin(key)
            try:
                stored = await store.fill(key, data, self._ttl_ms, token, self._id,
                                    expect=None if seen is None else sha1(seen))
                released = True
            except StoreError:
                self._c.add("store_errors")
                self._c.add("refresh_errors")
                self._end(ticket)
                return
            if not stored:    # set() or deleted meanwhile: that write stands
                self._c.add("stale_fills")
                self._end(ticket)
                return
            self._c.add("refreshes")
            self._invalidate_own(key, ticket)
            self._fill_local(key, value, self._ttl - self._fresh_for, ticket)
        finally:
            store.drop(key, token)
            if not released:
                await self._unlock(key, token)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop the refresh workers (a reload in progress finishes first)."""
        if self._closed:
            return
        self._closed = True
        self._todo.clear()
        self._todo_added.set()
        for w in self._workers:
            await w.join(timeout)


class NearCache(Cache):
    """A local LRUCache in front of the store, kept coherent across
    processes by the store's invalidation stream, which sees every writer:

    * on a single Redis node (6 and later, Valkey), Redis tracks the
      namespace's keys for this process (``CLIENT TRACKING ... BCAST PREFIX
      ns:``) and reports every change of one, whoever made it: corecache in
      any process, a plain ``SET`` from another client or ``redis-cli``, a
      Lua script, an expiry, ``FLUSHALL``;
    * and every write or delete through corecache publishes its keys on the
      namespace's channel (on a cluster, or a server without tracking, this
      is all there is: writes that bypass corecache are then seen only when
      the local copy's TTL runs out).

    Each message drops its keys from the local tier (milliseconds).  A
    write in this process updates its own local tier (on a single node the
    server's report of it then drops that copy again: the next read goes
    to the store once).

    While the stream is down (Redis restarted, connection lost, no answer
    to PING within two heartbeats) the local tier is cleared and bypassed;
    when it is back the local tier is cleared again and used.  A value
    read while a change of its key was in flight never enters the local
    tier (see FillGuard).

    :param local: the corecache.Cache of this process (required; an LRUCache
        or a Cache of any policy).  Give it a
        default_ttl: it bounds how stale a copy can get if a message is
        ever lost.
    :param ttl: seconds values live in the store.
    :param loader: optional ``loader(key)``: a miss of every tier loads (with
        stampede protection) instead of returning the default.
    :param heartbeat: seconds between PINGs on the invalidation connection.
    :param wait_ready: seconds the constructor (aio: ``async with`` or the
        first awaited call) waits for the subscription.
    """

    def __init__(self, store: Store, *, local: Any, ttl: Optional[float] = None,
                 loader: Optional[Callable[[str], Any]] = None,
                 loader_many: Optional[Callable[[List[str]], Any]] = None,
                 heartbeat: float = 1.0, wait_ready: float = 2.0, **options: Any) -> None:
        if local is None:
            raise TypeError("NearCache needs local=, a corecache.Cache")
        check_local(local)
        check_store(store)
        hb = check_seconds(heartbeat, "heartbeat", allow_inf=False)
        wait = check_seconds(wait_ready, "wait_ready", allow_inf=False) or 0.0
        super().__init__(store, ttl=ttl, local=local, loader=loader, loader_many=loader_many,
                         **options)
        self._guard = FillGuard()
        # key -> how many of this instance's own writes of it the server's
        # tracking will report (each report of one is not news: it must not
        # drop the value this instance just wrote)
        self._echoes: Dict[str, int] = {}
        self._echo_lock = threading.Lock()
        self._ready = Event()
        self._wait_ready = wait
        self._switch(False)          # bypassed until the channel is up
        self._sub = store.subscribe(self._on_event, heartbeat=hb or 1.0)
        constructor_wait(self._ready, wait)   # aio: in __aenter__ (or _start)

    async def _start(self) -> None:
        self._sub.ensure()
        await self._ready.wait(self._wait_ready)

    @property
    def tracking(self) -> bool:
        """True while the server reports every writer's changes (CLIENT
        TRACKING); False on a cluster, a server without it, or MemoryStore
        (where every write goes through corecache anyway)."""
        return bool(getattr(self._sub, "tracking", False))

    @property
    def local_enabled(self) -> bool:
        """False while the invalidation channel is down (local tier bypassed)."""
        return self._enabled

    def _expect(self, keys: List[str]) -> None:
        if getattr(self._sub, "tracking", False):
            with self._echo_lock:
                for k in keys:
                    self._echoes[k] = self._echoes.get(k, 0) + 1

    def _unexpect(self, keys: List[str]) -> None:
        with self._echo_lock:
            for k in keys:
                n = self._echoes.get(k, 0) - 1
                if n > 0:
                    self._echoes[k] = n
                else:
                    self._echoes.pop(k, None)

    def _news(self, keys: List[str]) -> List[str]:
        """Of keys the server reported changed, those this instance did not
        write itself (each report of an own write is taken once).  If
        another writer's report is taken for an own write's, that write
        came after the other's (or its own report, still due, drops the
        copy): the local tier never keeps an older value than the store."""
        if not self._echoes:
            return keys
        news = []
        with self._echo_lock:
            for k in keys:
                n = self._echoes.get(k, 0)
                if n == 0:
                    news.append(k)
                elif n == 1:
                    del self._echoes[k]
                else:
                    self._echoes[k] = n - 1
        return news

    def _on_event(self, event: str, origin: Optional[str], keys: Optional[List[str]]) -> None:
        local = self._local
        if event == "tracked":          # the server's report: every writer's changes
            if keys is not None:
                keys = self._news(keys)
            event = "keys"
        if event == "keys":
            if origin == self._id:
                return
            if keys is None:
                self._guard.invalidate_all()
                local.clear()
                return
            for k in keys:
                self._guard.invalidate(k)
            dropped = 0
            for k in keys:
                if local.pop(k, MISSING) is not MISSING:
                    dropped += 1
            if dropped:
                self._c.add("invalidations", dropped)
        elif event == "up":
            with self._echo_lock:
                self._echoes.clear()
            self._guard.invalidate_all()
            local.clear()
            self._switch(True)
            self._ready.set()
        elif event == "down":
            with self._echo_lock:
                self._echoes.clear()
            self._switch(False)
            self._guard.invalidate_all()
            local.clear()

    def _switch(self, enabled: bool) -> None:
        """Use the local tier (enabled) or bypass it: the hit path itself is
        swapped, so a hit pays no check of the channel's state."""
        self._enabled = enabled
        if enabled:
            self._local_get = self._local.get
            self.get = self._fast_get or self._get_plain
        else:
            self._local_get = never
            self.get = self._bypass_get

    async def _bypass_get(self, key: Any, default: Any = None) -> Any:
        self._sub.ensure()       # aio: a listener deferred until a loop ran
        return await self._get_slow(key, default)

    def _begin(self, key: str) -> Any:
        return self._guard.begin(key)

    def _end(self, ticket: Any) -> bool:
        return ticket is None or self._guard.end(ticket)

    def _invalidate_own(self, key: str, ticket: Any) -> None:
        self._guard.invalidate(key, keep=ticket)

    def _fill_local(self, key: str, value: Any, local_ttl: Any, ticket: Any) -> None:
        if not self._enabled:
            self._end(ticket)
            return
        super()._fill_local(key, value, local_ttl, ticket)

    def _stats_extra(self) -> Dict[str, Any]:
        extra = super()._stats_extra()
        extra["local_bypassed"] = not self._enabled
        return extra

    async def aclose(self) -> None:
        """Unsubscribe and stop the listener; the local tier is cleared."""
        if self._closed:
            return
        self._closed = True
        self._switch(False)
        await self._sub.aclose()
        self._local.clear()


def _min_local(a: Optional[float], b: float) -> float:
    return b if a is None else min(a, b)


async def warm(cache: Cache, keys: Any, *, batch_size: int = 500) -> int:
    """Preload a cache in batches through the pipeline.

    ``keys`` is an iterable of keys: each batch is one ``get_many`` (one
    store round trip; the misses go to ``loader_many`` or the loader, and
    back to the store in one more).  Or a mapping: each batch is one
    ``set_many``.  Returns how many keys now hold a value.
    """
    if not isinstance(cache, Cache):
        raise TypeError(f"cache must be a corecache.distributed cache, got {cache!r}")
    size = check_count(batch_size, "batch_size")
    if size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    n = 0
    if hasattr(keys, "items"):
        items = list(keys.items())
        for i in range(0, len(items), size):
            chunk = dict(items[i:i + size])
            await cache.set_many(chunk)
            n += len(chunk)
        return n
    batch: List[Any] = []
    for k in keys:
        batch.append(k)
        if len(batch) >= size:
            n += len(await cache.get_many(batch))
            batch = []
    if batch:
        n += len(await cache.get_many(batch))
    return n
