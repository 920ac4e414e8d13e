# asyncio source of corecache/distributed/_base.py (generated from it by _unasync.py)
"""What every distributed pattern shares: the tiers (an optional local
LRUCache in front of a store), the read path with stampede protection, and
statistics.

Read path of one key (``_get``), after a local miss:

1. in-process single flight (``_io.Flights``): one computation per key
   (a thread's; in aio one task per event loop) goes on, the other lookups
   wait for its result (or its exception);
2. the store: a hit fills the local tier (for no longer than the store
   entry has left) and returns;
3. a miss takes the key's fill lock in the store (a token of this call;
   taking it again with the same token succeeds, so a retried request
   cannot lock its caller out), renewed in the background while the loader
   runs.  The holder checks the store once more, loads, and *fills*: the
   store keeps the value only if no write of the key came through corecache
   since the lock was taken and the lock is still the holder's (one atomic
   step), so a slow load never overwrites a newer write.  A value whose
   fill was refused is returned to the caller but kept out of the local
   tier.  If the loader raises, the lock is left with the failure for a
   moment;
4. a process that did not get the lock polls the store (2 ms, doubling to
   50 ms) until the value appears (returned), the failure appears (raised
   as LoadFailed: the waiters of a load share its failure instead of each
   calling the loader), the lock disappears without either (the holder died
   or a delete cancelled its load: it competes for the lock again; one
   process wins), or ``lock_wait`` runs out (it loads, without storing).

So the loader of a key runs once however many threads and processes miss
it together, as long as the process holding the lock is alive and its load
ends within the waiters' ``lock_wait``.

A key that cannot be stored (not valid UTF-8) is never cached: every
lookup of it calls the loader.

When the store fails (unreachable, timeout, ...) the read path counts the
error and loads without it (the value is not stored): the loader answers,
and the local tier still works.  Writes never pretend: a store failure on a
write raises.

This module is the asyncio source; ``corecache/distributed/_base.py`` is
generated from it (``_unasync.py``).  I/O happens at the store's protocol
methods, the loader calls (``_io.call``) and ``_sleep``; what differs
between the styles is in ``_io``.
"""
from __future__ import annotations

from __future__ import annotations

import secrets
import uuid
from time import monotonic
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ...config import check_callable, check_ttl
from ...exceptions import LoadFailed, StoreError
from .._protocol import (MISSING, FillGuard, check_lease, check_local, failure_text,
                         lock_failure, lock_holder, min_ttl, never, norm_key, sha1, storable,
                         write_key)
from ..stats import Counters, DistributedStats
from ._io import Flights, Reads, call, fast_getter, sleep
from .stores import Store

__all__ = ["Cache", "FillGuard", "check_store", "check_local", "check_lease", "min_ttl",
           "never", "failure_text"]

# outcomes of a lookup, as counter names (a waiter counts its leader's)
LOCAL, STORE, MISS = "local_extra", "store_hits", "misses"
OWN_LOADER: Any = object()    # _get's load: the instance's loader, made by its leader


def check_store(store: Any) -> Store:
    if not isinstance(store, Store):
        raise TypeError(f"store must be a corecache.distributed store (MemoryStore, "
                        f"RedisStore) of this style, got {store!r}")
    return store


class Cache:
    """The tiers and the read path that the patterns share.

    ``get(key, default=None)``: the value of key from the local tier, else
    the store, else the loader (if any); ``default`` when no tier has it and
    there is no loader.  ``get_many``, ``get_or_load``, ``set``,
    ``set_many``, ``delete``, ``delete_many``, ``stats`` and ``close`` as
    documented on each.

    :param store: a MemoryStore or RedisStore.
    :param ttl: seconds entries live in the store (None: the store's
        default_ttl; ``math.inf``: no expiry).
    :param local: an optional corecache.Cache (an LRUCache, or a Cache of any
        policy) in front of the store.  Its entries
        live for the smaller of its own default_ttl, ``ttl`` and what the
        store entry they came from has left.
    :param loader: ``loader(key) -> value`` called on a miss of every tier
        (raise KeyError for "no such key").
    :param loader_many: ``loader_many(keys) -> {key: value}`` for batches
        (keys left out of the result do not exist).
    :param stampede: wait for another process's load of a key instead of
        loading it too (False: every process that misses loads; only the
        one holding the key's fill lock stores its value).
    :param lock_lease: seconds a fill lock outlives a process that died (or
        stopped) holding it; renewed every lock_lease/3 while the loader runs.
    :param lock_wait: seconds a miss waits for another process's load before
        loading itself (without storing; default 10, or lock_lease if larger).
    """

    # get is a slot, set per instance: with a local tier it is the
    # LRUCache's own getter (compiled: no Python frame on a hit) falling
    # back to _get_slow; a slot (a data descriptor) keeps the attribute
    # lookup as cheap as a method's.
    __slots__ = ("get", "__dict__", "__weakref__")

    def __init__(self, store: Store, *, ttl: Optional[float] = None, local: Any = None,
                 loader: Optional[Callable[[str], Any]] = None,
                 loader_many: Optional[Callable[[List[str]], Any]] = None,
                 stampede: bool = True, lock_lease: float = 10.0,
                 lock_wait: Optional[float] = None) -> None:
        self._store = check_store(store)
        self._ttl_given = check_ttl(ttl)
        self._ttl_ms = store.resolve_ttl(ttl)
        self._local = check_local(local)
        self._loader = check_callable(loader, "loader")
        self._loader_many = check_callable(loader_many, "loader_many")
        if not isinstance(stampede, bool):
            raise TypeError(f"stampede must be a bool, got {stampede!r}")
        self._stampede = stampede
        self._lock_lease = check_lease(lock_lease, "lock_lease")
        self._lock_wait = (max(10.0, self._lock_lease) if lock_wait is None
                           else check_lease(lock_wait, "lock_wait"))
        self._store_ttl = None if self._ttl_ms is None else self._ttl_ms / 1000.0
        self._local_ttl = None
        if self._local is not None:
            self._local_ttl = min_ttl(self._local.default_ttl, self._store_ttl)
        self._id = uuid.uuid4().hex   # origin of this instance's writes
        self._flight = Flights()
        self._reads = Reads(self._store)
        self._c = Counters()
        self._closed = False
        self._local_get: Callable[[Any, Any], Any] = (
            self._local.get if self._local is not None else never)
        self._fast_get = self._make_fast_get()
        self.get: Callable[..., Any] = self._fast_get or self._get_plain

    def _make_fast_get(self) -> Optional[Callable[..., Any]]:
        return fast_getter(self._local, self._get_slow)

    # ---- properties --------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    @property
    def local(self) -> Any:
        return self._local

    # ---- I/O seams ---------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        await sleep(seconds)

    # ---- reads -------------------------------------------------------------

    async def _get_plain(self, key: Any, default: Any = None) -> Any:
        """``get(key, default=None)``: the value of key from the local tier,
        else the store, else the loader (if any); ``default`` when no tier
        has it and there is no loader."""
        value = self._local_get(key, MISSING)
        if value is not MISSING:
            return value
        return await self._get_slow(key, default)

    async def _get_slow(self, key: Any, default: Any) -> Any:
        k = norm_key(key)
        if k is not key and self._local is not None:
            value = self._local_get(k, MISSING)
            if value is not MISSING:
                return value
        value = await self._get(k, OWN_LOADER)
        return default if value is MISSING else value

    async def get_or_load(self, key: Any, load: Callable[..., Any], *args: Any,
                          **kwargs: Any) -> Any:
        """The value of key from the local tier or the store; on a miss of
        both, ``load(*args, **kwargs)``, stampede-protected and stored as
        ``get`` does with the loader."""
        value = self._local_get(key, MISSING)
        if value is not MISSING:
            return value
        k = norm_key(key)
        return await self._get(k, lambda: load(*args, **kwargs))

    def _loader_for(self, key: str) -> Optional[Callable[[], Any]]:
        if self._loader is not None:
            loader = self._loader
            return lambda: loader(key)
        if self._loader_many is not None:
            async def load_one() -> Any:
                found = await self._load_many_call([key])
                if key not in found:
                    raise KeyError(key)
                return found[key]
            return load_one
        return None

    async def _get(self, key: str, load: Optional[Callable[[], Any]]) -> Any:
        """The value of a normalized key (MISSING if absent and no loader)."""
        value, _ = await self._flight.run(key, self._lead, key, load, follower=self._c.followed)
        return value

    async def _lead(self, key: str, load: Optional[Callable[[], Any]]) -> Tuple[Any, str]:
        if load is OWN_LOADER:
            load = self._loader_for(key)
        local = self._local
        if local is not None:
            value = local.peek(key, MISSING)   # filled while we queued
            if value is not MISSING:
                self._c.add(LOCAL)
                return value, LOCAL
        if not storable(key):    # cannot name a stored entry: the loader answers
            self._c.add(MISS)
            return (MISSING if load is None else await self._call_loader(load)), MISS
        ticket = self._begin(key)
        try:
            value, local_ttl, outcome = await self._resolve(key, load)
        except BaseException:
            self._end(ticket)
            raise
        self._fill_local(key, value, local_ttl, ticket)
        return value, outcome

    async def _resolve(self, key: str, load: Optional[Callable[[], Any]]) -> Tuple[Any, Any, str]:
        """(value or MISSING, local TTL: None for the default, 0 for no
        fill, else seconds; the outcome counted)."""
        try:
            found = await self._lookup(key)
        except StoreError:
            self._c.add2("store_errors", MISS)
            if load is None:
                return MISSING, 0, MISS
            return (await self._load_value(key, load))[1], None, MISS
        if found is not MISSING:
            if found[0] is MISSING:     # a pending delete: absent, do not load
                self._c.add(MISS)
                return MISSING, 0, MISS
            self._c.add(STORE)
            return found[0], found[1], STORE
        self._c.add(MISS)
        if load is None:
            return MISSING, 0, MISS
        value, local_ttl = await self._load_guarded(key, load)
        return value, local_ttl, MISS

    async def _lookup(self, key: str) -> Any:
        """(value, local TTL) from the store, or MISSING.  (MISSING, 0) is
        "absent, do not load" (a pending delete of write-behind)."""
        if self._local is None:
            data, left = await self._reads.fetch_ttl(key, False)
        else:
            sent = monotonic()
            data, left = await self._reads.fetch_ttl(key)
            left = self._left(left, sent)
        if data is None:
            return (await self._peek_more([key])).get(key, MISSING)
        value = self._store.decode(key, data)
        return MISSING if value is MISSING else (value, self._cap(left))

    async def _peek_more(self, keys: List[str]) -> Dict[str, Tuple[Any, Any]]:
        """{key: (value, local TTL)} of keys the store has no value of, from
        elsewhere in the store (write-behind: its pending writes)."""
        return {}

    async def _fetch_many(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                          List[Optional[float]]]:
        """The stored bytes of keys, and (with a local tier) what each entry
        has left now, at most (None: no expiry, or no local tier)."""
        if self._local is None:
            return await self._store.fetch_many(keys), [None] * len(keys)
        sent = monotonic()
        datas, lefts = await self._store.fetch_many_ttl(keys)
        return datas, [self._left(left, sent) for left in lefts]

    async def _recheck(self, keys: List[str]) -> Tuple[Dict[str, Tuple[Any, Any]],
                                                  Dict[str, Optional[str]]]:
        """Under the fill locks, before loading: ({key: (value, local TTL)}
        of the keys stored meanwhile, {key: what a fill must find there}:
        None for absent, else the SHA-1 of the bytes seen (a value the
        serializer refuses is replaced by the fill))."""
        datas, lefts = await self._fetch_many(keys)
        found: Dict[str, Tuple[Any, Any]] = {}
        expects: Dict[str, Optional[str]] = {}
        absent = []
        for k, data, left in zip(keys, datas, lefts):
            if data is None:
                expects[k] = None
                absent.append(k)
                continue
            value = self._store.decode(k, data)
            if value is MISSING:
                expects[k] = sha1(data)
            else:
                found[k] = (value, self._cap(left))
        if absent:
            for k, got in (await self._peek_more(absent)).items():
                if got[0] is not MISSING:
                    found[k] = got
        return found, expects

    def _cap(self, left: Optional[float]) -> Optional[float]:
        """The local TTL of a value whose store entry has left seconds."""
        if left is None:
            return None
        if left <= 0:
            return 0
        return min_ttl(self._local_ttl, left) or left

    @staticmethod
    def _left(left: Optional[float], sent: float) -> Optional[float]:
        """What a store entry that had left seconds when the server read it
        has left now: the server read it after sent, so no more than this."""
        return None if left is None else left - (monotonic() - sent)

    def _since(self, started: float) -> Optional[float]:
        """A local TTL no longer than a store entry written after started
        has left (None: no store TTL)."""
        if self._store_ttl is None:
            return None
        left = self._store_ttl - (monotonic() - started)
        return left if left > 0 else 0

    def _decoded(self, key: str, data: Optional[bytes]) -> Any:
        return MISSING if data is None else self._store.decode(key, data)

    async def _call_loader(self, load: Callable[[], Any]) -> Any:
        """One loader call, counted."""
        t0 = self._c.load_latency.start()
        try:
            value = await call(load)
        except BaseException:
            self._c.add("load_errors")
            raise
        finally:
            self._c.load_latency.stop(t0)
        self._c.add("loads")
        return value

    async def _load_value(self, key: str, load: Callable[[], Any]) -> Tuple[bytes, Any]:
        """(serialized, value) of one loader call, counted."""
        value = await self._call_loader(load)
        data = self._store.encode(value, key, self._ttl_ms)
        return data, self._roundtrip(key, data, value)

    def _roundtrip(self, key: str, data: bytes, value: Any) -> Any:
        # readers in other processes get the decoded value: so do we
        decoded = self._store.decode(key, data, check_expiry=False)
        return value if decoded is MISSING else decoded

    def _token(self) -> str:
        return secrets.token_hex(8)

    async def _load_guarded(self, key: str, load: Callable[[], Any]) -> Tuple[Any, Any]:
        """(value, local TTL) of a miss: loaded under the fill lock, or
        another process's load waited for (see the module docstring)."""
        store = self._store
        token = self._token()
        started = monotonic()
        deadline = started + self._lock_wait
        delay = 0.002
        while True:
            try:
                locked = await store.lock(key, token, self._lock_lease)
            except StoreError:
                self._c.add("store_errors")
                return (await self._load_value(key, load))[1], None
            if locked:
                return await self._load_locked(key, load, token)
            if not self._stampede:       # load too; the lock's holder stores its own
                return (await self._load_value(key, load))[1], None
            # another process loads: wait for its value
            while True:
                left = deadline - monotonic()
                if left <= 0:
                    self._c.add("lock_timeouts")
                    return (await self._load_value(key, load))[1], None
                await self._sleep(min(delay, left))
                delay = min(delay * 2, 0.05)
                try:
                    datas, states = await store.lock_state([key])
                except StoreError:
                    self._c.add("store_errors")
                    return (await self._load_value(key, load))[1], None
                value = self._decoded(key, datas[0])
                if value is not MISSING:
                    self._c.add("lock_waits")
                    return value, self._since(started)
                if lock_holder(states[0]) is not None:
                    continue
                failure = lock_failure(states[0])
                if failure is not None:
                    raise self._shared_failure(key, failure[1])
                break   # the holder died, or a delete cancelled its load: compete again

    def _shared_failure(self, key: str, text: str) -> BaseException:
        self._c.add("lock_waits")
        if text.startswith("KeyError:"):
            return KeyError(key)
        return LoadFailed(f"the loader of key {key!r} failed in another process while this "
                          f"one waited for it: {text} (the waiters of a load share its "
                          f"failure; the next lookup loads anew)", key)

    async def _load_locked(self, key: str, load: Callable[[], Any], token: str) -> Tuple[Any, Any]:
        store = self._store
        store.keep(key, token, self._lock_lease)
        try:
            expect = None
            try:   # a load may have finished between our miss and our lock
                found, expects = await self._recheck([key])
                if key in found:
                    self._c.add("lock_waits")
                    await self._unlock(key, token)
                    return found[key]
                expect = expects[key]
            except StoreError:
                self._c.add("store_errors")
            try:
                data, value = await self._load_value(key, load)
            except BaseException as exc:
                await self._unlock(key, token, failure_text(exc) if isinstance(exc, Exception)
                             else None)
                raise
            started = monotonic()
            self._expect([key])
            try:
                stored = await store.fill(key, data, self._ttl_ms, token, self._id, expect)
            except StoreError:
                self._unexpect([key])
                self._c.add("store_errors")
                await self._unlock(key, token)
                return value, None
            if not stored:   # a write came in while we loaded: ours is older
                self._unexpect([key])
                self._c.add("stale_fills")
                return value, 0
            return value, self._since(started)
        finally:
            store.drop(key, token)

    async def _unlock(self, key: str, token: str, failure: Optional[str] = None) -> None:
        try:
            await self._store.unlock(key, token, failure)
        except StoreError:
            self._c.add("store_errors")

    async def _load_many_call(self, keys: List[str]) -> Dict[str, Any]:
        """The loader over a batch: {key: value} of the keys that exist."""
        t0 = self._c.load_latency.start()
        try:
            if self._loader_many is not None:
                result = await call(self._loader_many, list(keys))
                if not hasattr(result, "items"):
                    raise TypeError(f"loader_many must return a mapping, got "
                                    f"{type(result).__name__}")
                wanted = set(keys)
                found = {}
                for k, v in result.items():
                    k = norm_key(k)
                    if k in wanted:
                        found[k] = v
            else:
                found = {}
                for k in keys:
                    try:
                        found[k] = await call(self._loader, k)
                    except KeyError:
                        pass
        except BaseException:
            self._c.add("load_errors")
            raise
        finally:
            self._c.load_latency.stop(t0)
        self._c.add("loads", len(found))
        return found

    async def _load_many(self, keys: List[str]) -> Dict[str, Tuple[bytes, Any]]:
        """{key: (serialized, value)} of the keys the loader found."""
        out = {}
        for k, v in (await self._load_many_call(keys)).items():
            data = self._store.encode(v, k, self._ttl_ms)
            out[k] = (data, self._roundtrip(k, data, v))
        return out

    async def _load_many_unstored(self, keys: List[str]) -> Dict[str, Tuple[Any, Any]]:
        """Loaded without storing (the store failed, or another process
        holds the fill lock): the local tier may still keep them."""
        return {k: (v, None) for k, (_, v) in (await self._load_many(keys)).items()}

    async def _load_many_guarded(self, keys: List[str],
                                 deadline: float) -> Dict[str, Tuple[Any, Any]]:
        """{key: (value, local TTL)} of the keys found, loaded under their
        fill locks or waited for."""
        store = self._store
        token = self._token()
        started = monotonic()
        try:
            locked = await store.lock_many(keys, token, self._lock_lease)
        except StoreError:
            self._c.add("store_errors")
            return await self._load_many_unstored(keys)
        out: Dict[str, Tuple[Any, Any]] = {}
        if locked:
            out.update(await self._load_many_locked(locked, token))
        mine = set(locked)
        waiting = [k for k in keys if k not in mine]
        if not self._stampede:
            out.update(await self._load_many_unstored(waiting))
            return out
        delay = 0.002
        while waiting:
            left = deadline - monotonic()
            if left <= 0:
                self._c.add("lock_timeouts", len(waiting))
                out.update(await self._load_many_unstored(waiting))
                break
            await self._sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
            try:
                datas, states = await store.lock_state(waiting)
            except StoreError:
                self._c.add("store_errors")
                out.update(await self._load_many_unstored(waiting))
                break
            free = []
            still = []
            for k, data, state in zip(waiting, datas, states):
                value = self._decoded(k, data)
                if value is not MISSING:
                    self._c.add("lock_waits")
                    out[k] = (value, self._since(started))
                elif lock_holder(state) is not None:
                    still.append(k)
                elif lock_failure(state) is not None:
                    raise self._shared_failure(k, lock_failure(state)[1])  # type: ignore[index]
                else:
                    free.append(k)
            if free:   # their loader died, or a delete cancelled it: compete again
                out.update(await self._load_many_guarded(free, deadline))
            waiting = still
        return out

    async def _load_many_locked(self, keys: List[str], token: str) -> Dict[str, Tuple[Any, Any]]:
        store = self._store
        for k in keys:
            store.keep(k, token, self._lock_lease)
        out: Dict[str, Tuple[Any, Any]] = {}
        try:
            rest = keys
            expects: Dict[str, Optional[str]] = {}
            try:   # loaded meanwhile?
                found, expects = await self._recheck(keys)
                if found:
                    self._c.add("lock_waits", len(found))
                    out.update(found)
                    await store.unlock_many(list(found), token)
                    rest = [k for k in keys if k not in found]
            except StoreError:
                self._c.add("store_errors")
            try:
                loaded = await self._load_many(rest) if rest else {}
            except BaseException as exc:
                text = failure_text(exc) if isinstance(exc, Exception) else None
                for k in rest:
                    await self._unlock(k, token, text)
                raise
            absent = [k for k in rest if k not in loaded]
            if absent:
                try:
                    await store.unlock_many(absent, token)
                except StoreError:
                    self._c.add("store_errors")
            started = monotonic()
            refused: Any = 0     # refused fills stay out of the local tier
            self._expect(list(loaded))
            try:
                stored = set(await store.fill_many(
                    [(k, d, expects.get(k)) for k, (d, _) in loaded.items()],
                    self._ttl_ms, token, self._id))
            except StoreError:
                self._unexpect(list(loaded))
                self._c.add("store_errors")
                stored, refused = set(), None
                try:
                    await store.unlock_many(list(loaded), token)
                except StoreError:
                    pass
            else:
                if len(stored) < len(loaded):
                    self._unexpect([k for k in loaded if k not in stored])
                    self._c.add("stale_fills", len(loaded) - len(stored))
            ttl = self._since(started)
            for k, (_, v) in loaded.items():
                out[k] = (v, ttl if k in stored else refused)
        finally:
            for k in keys:
                store.drop(k, token)
        return out

    # ---- batches -----------------------------------------------------------

    async def get_many(self, keys: Iterable[Any]) -> Dict[str, Any]:
        """{key: value} for every key found in a tier or produced by the
        loader (``loader_many`` if given): one store round trip for the
        keys the local tier lacks, one loader call for those the store
        lacks.  Keys are returned as str."""
        ks = list(dict.fromkeys(norm_key(k) for k in keys))
        out: Dict[str, Any] = {}
        missing = []
        for k in ks:
            value = self._local_get(k, MISSING)
            if value is MISSING:
                missing.append(k)
            else:
                out[k] = value
        if missing:
            leading = []

            async def lead(keys: List[str]) -> Dict[str, Tuple[Any, str]]:
                leading.append(True)
                found = await self._resolve_many(keys)
                leading.append(False)
                return found
            try:
                results, followed = await self._flight.run_many(missing, lead)
            except BaseException:
                if not leading or not leading[-1]:   # a waiter's failure, not ours
                    self._c.add2(MISS, "flight_waits")
                raise
            for k, result in results.items():
                value, outcome = result if result is not None else (MISSING, MISS)
                if k in followed:
                    self._c.add2(outcome, "flight_waits")
                if value is not MISSING:
                    out[k] = value
        return {k: out[k] for k in ks if k in out}

    async def _resolve_many(self, keys: List[str]) -> Dict[str, Tuple[Any, str]]:
        """{key: (value or MISSING, outcome)} of every key."""
        loads = self._loader is not None or self._loader_many is not None
        results: Dict[str, Tuple[Any, str]] = {}
        local = self._local
        if local is not None:
            for k in keys:
                value = local.peek(k, MISSING)   # filled while we queued
                if value is not MISSING:
                    self._c.add(LOCAL)
                    results[k] = (value, LOCAL)
        unstorable = [k for k in keys if k not in results and not storable(k)]
        if unstorable:   # the loader answers for keys that cannot be stored
            self._c.add(MISS, len(unstorable))
            loaded = await self._load_many_call(unstorable) if loads else {}
            for k in unstorable:
                results[k] = (loaded.get(k, MISSING), MISS)
        keys = [k for k in keys if k not in results]
        if not keys:
            return results
        tickets = [self._begin(k) for k in keys]
        try:
            try:
                found, lefts, missing = await self._lookup_many(keys)
            except StoreError:
                self._c.add2("store_errors", MISS)
                self._c.add(MISS, len(keys) - 1)
                found, lefts, missing = {}, {}, list(keys)
                got = await self._load_many_unstored(missing) if loads else {}
                missing = []
            else:
                got = (await self._load_many_guarded(missing, monotonic() + self._lock_wait)
                       if missing and loads else {})
        except BaseException:
            for t in tickets:
                self._end(t)
            raise
        for k, t in zip(keys, tickets):
            if k in found:
                self._fill_local(k, found[k], lefts.get(k), t)
                results[k] = (found[k], STORE)
            elif k in got:
                self._fill_local(k, got[k][0], got[k][1], t)
                results[k] = (got[k][0], MISS)
            else:
                self._end(t)
                results[k] = (MISSING, MISS)
        return results

    async def _lookup_many(self, keys: List[str], count: bool = True
                     ) -> Tuple[Dict[str, Any], Dict[str, Any], List[str]]:
        """({key: value} found in the store, {key: local TTL}, keys
        missing); StoreError if the store failed."""
        datas, lefts = await self._fetch_many(keys)
        found = {}
        ttls = {}
        missing = []
        absent = []
        for k, data, value, left in zip(keys, datas, self._store.decode_many(keys, datas),
                                        lefts):
            if value is MISSING:
                missing.append(k)
                if data is None:
                    absent.append(k)
            else:
                found[k] = value
                ttls[k] = self._cap(left)
        if absent:
            more = await self._peek_more(absent)
            if more:
                for k, (value, ttl) in more.items():
                    if value is not MISSING:
                        found[k] = value
                        ttls[k] = ttl
                missing = [k for k in missing if k not in more]   # found, or a pending delete
        if count:
            if found:
                self._c.add(STORE, len(found))
            if missing or len(found) + len(missing) < len(keys):
                self._c.add(MISS, len(keys) - len(found))
        return found, ttls, missing

    # ---- the local tier ----------------------------------------------------

    def _begin(self, key: str) -> Any:
        return None

    def _end(self, ticket: Any) -> bool:
        return True

    def _fill_local(self, key: str, value: Any, local_ttl: Any, ticket: Any) -> None:
        """Put a value read or loaded into the local tier (unless MISSING,
        local_ttl 0, or the ticket says the key changed meanwhile)."""
        local = self._local
        if local is None or value is MISSING or local_ttl == 0:
            self._end(ticket)
            return
        local.set(key, value, ttl=self._local_ttl if local_ttl is None else local_ttl)
        if not self._end(ticket):
            local.pop(key, None)

    def _local_ttl_for(self, ttl: Any) -> Optional[float]:
        if ttl is None:
            return self._local_ttl
        return min_ttl(self._local_ttl if self._local is None else self._local.default_ttl,
                       check_ttl(ttl))

    # ---- writes (plain cache writes; write-through/behind override set) ---

    async def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Put value into the store and the local tier.  A store failure
        raises StoreError (and drops the local entry); a key that cannot
        be stored (not valid UTF-8) raises ValueError."""
        k = write_key(key)
        ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
        data = self._store.encode(value, k, ms)
        await self._write(k, data, ms, self._roundtrip(k, data, value), ttl)

    async def _write(self, key: str, data: bytes, ms: Optional[int], value: Any,
               ttl: Optional[float]) -> None:
        ticket = self._begin(key)
        self._expect([key])
        try:
            await self._store.put(key, data, ms, self._id)
        except StoreError:
            self._unexpect([key])
            self._c.add("store_errors")
            self._end(ticket)
            if self._local is not None:
                self._local.pop(key, None)
            raise
        self._invalidate_own(key, ticket)
        self._fill_local(key, value, self._local_ttl_for(ttl), ticket)

    def _invalidate_own(self, key: str, ticket: Any) -> None:
        """This process changed key: fills of it in flight are stale."""

    def _expect(self, keys: List[str]) -> None:
        """This instance is about to store values of keys (a near cache:
        the server's report of these writes is not news to it)."""

    def _unexpect(self, keys: List[str]) -> None:
        """The writes of keys _expect announced did not happen (or may not
        have)."""

    async def set_many(self, mapping: Any, ttl: Optional[float] = None) -> None:
        """Put every (key, value) into the store (one round trip) and the
        local tier."""
        if not hasattr(mapping, "items"):
            raise TypeError(f"set_many takes a mapping, got {type(mapping).__name__}")
        ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
        items = [(write_key(k), v) for k, v in mapping.items()]
        encoded = [(k, self._store.encode(v, k, ms)) for k, v in items]
        if not encoded:
            return
        tickets = [self._begin(k) for k, _ in encoded]
        self._expect([k for k, _ in encoded])
        try:
            await self._store.put_many(encoded, ms, self._id)
        except StoreError:
            self._unexpect([k for k, _ in encoded])
            self._c.add("store_errors")
            for t in tickets:
                self._end(t)
            if self._local is not None:
                for k, _ in encoded:
                    self._local.pop(k, None)
            raise
        local_ttl = self._local_ttl_for(ttl)
        for (k, v), (_, data), t in zip(items, encoded, tickets):
            self._invalidate_own(k, t)
            self._fill_local(k, self._roundtrip(k, data, v), local_ttl, t)

    async def delete(self, key: Any) -> bool:
        """Remove key from the store and the local tier; True if the store
        had it.  A store failure raises StoreError."""
        k = write_key(key)
        if self._local is not None:
            self._local.pop(k, None)
        try:
            found = await self._store.remove(k, self._id)
        except StoreError:
            self._c.add("store_errors")
            raise
        finally:
            self._invalidate_own(k, None)
            if self._local is not None:
                self._local.pop(k, None)
        return found

    async def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove keys from the store (one round trip) and the local tier."""
        ks = list(dict.fromkeys(write_key(k) for k in keys))
        if not ks:
            return 0
        try:
            return await self._store.remove_many(ks, self._id)
        except StoreError:
            self._c.add("store_errors")
            raise
        finally:
            for k in ks:
                self._invalidate_own(k, None)
                if self._local is not None:
                    self._local.pop(k, None)

    # ---- statistics and life cycle -----------------------------------------

    def stats(self) -> DistributedStats:
        """A snapshot of this cache's counters (see DistributedStats)."""
        return self._c.snapshot(**self._stats_extra())

    def _stats_extra(self) -> Dict[str, Any]:
        extra: Dict[str, Any] = {"corrupt": self._store.corrupt}
        if self._local is not None:
            extra["local_hits"] = self._local.stats().hits
        return extra

    async def aclose(self) -> None:
        """Stop background work (idempotent).  The store stays open: it may
        be shared."""
        self._closed = True

    async def _start(self) -> None:
        """Start what waited for an event loop (aio), and wait until the
        instance is ready (a near cache: its invalidation stream)."""

    async def __aenter__(self) -> "Cache":
        await self._start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(store={self._store!r}, "
                f"local={'None' if self._local is None else type(self._local).__name__})")
