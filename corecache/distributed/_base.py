"""What every distributed pattern shares: the tiers (an optional local
LRUCache in front of a store), the read path with stampede protection, and
statistics.

Read path of one key (``_get``), after a local miss:

1. in-process single flight: one thread per key goes on, the others wait
   for its result (or its exception);
2. the store: a hit fills the local tier and returns;
3. a miss takes the store's load lock (``SET NX PX`` with a random token);
   the holder checks the store once more, loads, stores the value, and
   releases the lock by compare-and-delete;
4. a process that did not get the lock polls the store (2 ms, doubling to
   50 ms) until the value appears, the lock disappears without a value (the
   loader failed or died: it competes for the lock again), or ``lock_wait``
   runs out (it loads itself).

When the store fails (unreachable, timeout, ...) the read path counts the
error and loads without it: the loader answers, and the local tier still
works.  Writes never pretend: a store failure on a write raises.
"""
from __future__ import annotations

import math
import threading
import time
import uuid
from time import monotonic
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .._flight import Flight
from ..config import check_callable, check_seconds, check_ttl
from ..exceptions import StoreError
from .stats import Counters, DistributedStats
from .stores import MISSING, Store, norm_key

__all__ = ["Cache", "SingleFlight"]

_get_ident = threading.get_ident


def _reentered(key: str) -> RuntimeError:
    return RuntimeError(f"the loader of key {key!r} asked for the same key "
                        f"(it would wait for itself)")


class SingleFlight:
    """Concurrent calls for one key share one computation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: Dict[str, Flight] = {}

    def run(self, key: str, fn: Callable[[], Any]) -> Any:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = Flight()
        if not leader:
            if flight.owner == _get_ident():
                raise _reentered(key)
            return flight.wait()
        try:
            value = fn()
        except BaseException as exc:
            with self._lock:
                del self._flights[key]
            flight.fail(exc)
            raise
        with self._lock:
            del self._flights[key]
        flight.succeed(value)
        return value

    def claim(self, keys: List[str]) -> Tuple[List[str], Dict[str, Flight]]:
        """(keys this thread leads, {key: flight of another thread})."""
        lead: List[str] = []
        follow: Dict[str, Flight] = {}
        me = _get_ident()
        with self._lock:
            for k in keys:
                flight = self._flights.get(k)
                if flight is None:
                    self._flights[k] = Flight()
                    lead.append(k)
                elif flight.owner == me:
                    for mine in lead:
                        del self._flights[mine]
                    raise _reentered(k)
                else:
                    follow[k] = flight
        return lead, follow

    def finish(self, keys: List[str], values: Dict[str, Any]) -> None:
        with self._lock:
            flights = [(k, self._flights.pop(k)) for k in keys]
        for k, flight in flights:
            flight.succeed(values.get(k, MISSING))

    def fail(self, keys: List[str], exc: BaseException) -> None:
        with self._lock:
            flights = [self._flights.pop(k) for k in keys if k in self._flights]
        for flight in flights:
            flight.fail(exc)


class _Ticket:
    __slots__ = ("key", "epoch", "dirty")

    def __init__(self, key: str, epoch: int) -> None:
        self.key = key
        self.epoch = epoch
        self.dirty = False


class FillGuard:
    """Keeps a value read from the store out of the local tier when the key
    changed while it was being read.

    A fill registers a ticket before reading the store; an invalidation
    marks every ticket of its key dirty, and a lost channel bumps the
    epoch.  The filler puts the value into the local tier *first* and then
    checks its ticket, dropping the entry if it went dirty; the invalidation
    marks first and drops the entry afterwards.  Whatever the interleaving,
    a value that an invalidation overtook does not stay.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watch: Dict[str, List[_Ticket]] = {}
        self._epoch = 0

    def begin(self, key: str) -> _Ticket:
        with self._lock:
            ticket = _Ticket(key, self._epoch)
            self._watch.setdefault(key, []).append(ticket)
        return ticket

    def end(self, ticket: _Ticket) -> bool:
        """Unregister; True if nothing invalidated the key meanwhile."""
        with self._lock:
            tickets = self._watch.get(ticket.key)
            if tickets is not None:
                try:
                    tickets.remove(ticket)
                except ValueError:
                    pass
                if not tickets:
                    del self._watch[ticket.key]
            return not ticket.dirty and ticket.epoch == self._epoch

    def invalidate(self, key: str, keep: Optional[_Ticket] = None) -> None:
        with self._lock:
            for ticket in self._watch.get(key, ()):
                if ticket is not keep:
                    ticket.dirty = True

    def invalidate_all(self) -> None:
        with self._lock:
            self._epoch += 1


def check_store(store: Any) -> Store:
    if not isinstance(store, Store):
        raise TypeError(f"store must be a corecache.distributed store (MemoryStore, "
                        f"RedisStore), got {store!r}")
    return store


def check_local(local: Any, name: str = "local") -> Any:
    if local is None:
        return None
    for attr in ("get", "set", "pop", "peek", "clear", "stats"):
        if not callable(getattr(local, attr, None)):
            raise TypeError(f"{name} must be a corecache.LRUCache or None, got {local!r}")
    return local


def check_lease(value: Any, name: str) -> float:
    seconds = check_seconds(value, name, allow_inf=False)
    if seconds is None:
        raise TypeError(f"{name} must be a positive number of seconds, got None")
    return seconds


def _min_ttl(*ttls: Optional[float]) -> Optional[float]:
    finite = [t for t in ttls if t is not None and t != math.inf]
    return min(finite) if finite else None


class Cache:
    """The tiers and the read path that the patterns share.

    ``get(key, default=None)``: the value of key from the local tier, else
    the store, else the loader (if any); ``default`` when no tier has it and
    there is no loader.  ``get_many``, ``set``, ``set_many``, ``delete``,
    ``delete_many``, ``stats`` and ``close`` as documented on each.

    :param store: a MemoryStore or RedisStore.
    :param ttl: seconds entries live in the store (None: the store's
        default_ttl; ``math.inf``: no expiry).
    :param local: an optional LRUCache in front of the store.  Its entries
        live for the smaller of its own default_ttl and ``ttl``.
    :param loader: ``loader(key) -> value`` called on a miss of every tier
        (raise KeyError for "no such key").
    :param loader_many: ``loader_many(keys) -> {key: value}`` for batches
        (keys left out of the result do not exist).
    :param stampede: take the store's load lock on a miss so that one
        process loads while the others wait (False: every process loads).
    :param lock_lease: seconds the load lock is held at most.
    :param lock_wait: seconds a process waits for another's load before
        loading itself (default: lock_lease).
    """

    _near = False   # NearCache: fills guarded, local tier switched by the channel

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
        self._lock_wait = (self._lock_lease if lock_wait is None
                           else check_lease(lock_wait, "lock_wait"))
        store_ttl = None if self._ttl_ms is None else self._ttl_ms / 1000.0
        self._local_ttl = None
        if self._local is not None:
            self._local_ttl = _min_ttl(self._local.default_ttl, store_ttl)
        self._id = uuid.uuid4().hex[:16]   # origin of this instance's writes
        self._flight = SingleFlight()
        self._c = Counters()
        self._closed = False
        self._local_get: Callable[[Any, Any], Any] = (
            self._local.get if self._local is not None else _never)
        self._fast_get = self._make_fast_get()
        self.get: Callable[..., Any] = self._fast_get or self._get_plain

    def _make_fast_get(self) -> Optional[Callable[..., Any]]:
        getter = getattr(self._local, "getter", None)
        return getter(self._get_slow) if getter is not None else None

    # ---- properties --------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    @property
    def local(self) -> Any:
        return self._local

    # ---- reads -------------------------------------------------------------

    def _get_plain(self, key: Any, default: Any = None) -> Any:
        """``get(key, default=None)``: the value of key from the local tier,
        else the store, else the loader (if any); ``default`` when no tier
        has it and there is no loader."""
        value = self._local_get(key, MISSING)
        if value is not MISSING:
            return value
        return self._get_slow(key, default)

    def _get_slow(self, key: Any, default: Any) -> Any:
        k = norm_key(key)
        if k is not key and self._local is not None:
            value = self._local_get(k, MISSING)
            if value is not MISSING:
                return value
        value = self._get(k, self._loader_for(k))
        return default if value is MISSING else value

    def _loader_for(self, key: str) -> Optional[Callable[[], Any]]:
        if self._loader is not None:
            loader = self._loader
            return lambda: loader(key)
        if self._loader_many is not None:
            def load_one() -> Any:
                found = self._load_many_call([key])
                if key not in found:
                    raise KeyError(key)
                return found[key]
            return load_one
        return None

    def _get(self, key: str, load: Optional[Callable[[], Any]]) -> Any:
        """The value of a normalized key (MISSING if absent and no loader)."""
        return self._flight.run(key, lambda: self._lead(key, load))

    def _lead(self, key: str, load: Optional[Callable[[], Any]]) -> Any:
        local = self._local
        if local is not None:
            value = local.peek(key, MISSING)   # filled while we queued
            if value is not MISSING:
                return value
        ticket = self._begin(key)
        try:
            value, local_ttl = self._resolve(key, load)
        except BaseException:
            self._end(ticket)
            raise
        self._fill(key, value, local_ttl, ticket)
        return value

    def _resolve(self, key: str, load: Optional[Callable[[], Any]]) -> Tuple[Any, Any]:
        """(value or MISSING, local TTL: None for the default, 0 for no fill)."""
        try:
            found = self._lookup(key)
        except StoreError:
            self._c.add("store_errors")
            if load is None:
                return MISSING, 0
            return self._load_value(key, load)[1], None
        if found is not MISSING:
            self._c.add("misses" if found[0] is MISSING else "store_hits")
            return found
        self._c.add("misses")
        if load is None:
            return MISSING, 0
        return self._load_guarded(key, load), None

    def _lookup(self, key: str) -> Any:
        """(value, local TTL) from the store, or MISSING.  Subclasses add
        what they need (refresh-ahead reads the TTL; write-behind looks at
        its pending writes)."""
        data = self._store._fetch(key)
        if data is None:
            return MISSING
        value = self._store.decode(key, data)
        return MISSING if value is MISSING else (value, None)

    def _decoded(self, key: str, data: Optional[bytes]) -> Any:
        if data is None:
            return MISSING
        return self._store.decode(key, data)

    # ---- loading -----------------------------------------------------------

    def _load_value(self, key: str, load: Callable[[], Any]) -> Tuple[bytes, Any]:
        """Run the loader: (serialized, value as every reader will see it)."""
        t0 = self._c.load_latency.start()
        try:
            value = load()
        except BaseException:
            self._c.add("load_errors")
            raise
        finally:
            self._c.load_latency.stop(t0)
        self._c.add("loads")
        data = self._store.encode(value)
        return data, self._roundtrip(key, data, value)

    def _roundtrip(self, key: str, data: bytes, value: Any) -> Any:
        # readers in other processes get the decoded value: so do we
        decoded = self._store.decode(key, data)
        return value if decoded is MISSING else decoded

    def _put(self, key: str, data: bytes) -> None:
        """Store a loaded value; a failure is counted, not raised (reads)."""
        try:
            self._store._put(key, data, self._ttl_ms, self._id)
        except StoreError:
            self._c.add("store_errors")

    def _load_guarded(self, key: str, load: Callable[[], Any]) -> Any:
        store = self._store
        if not self._stampede:
            data, value = self._load_value(key, load)
            self._put(key, data)
            return value
        deadline = monotonic() + self._lock_wait
        delay = 0.002
        while True:
            try:
                token = store._lock("load", key, self._lock_lease)
            except StoreError:
                self._c.add("store_errors")
                return self._load_value(key, load)[1]
            if token is not None:
                return self._load_locked(key, load, token)
            # another process loads: wait for its value
            while True:
                left = deadline - monotonic()
                if left <= 0:
                    self._c.add("lock_timeouts")
                    data, value = self._load_value(key, load)
                    self._put(key, data)
                    return value
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.05)
                try:
                    datas, locked = store._fetch_locked([key])
                except StoreError:
                    self._c.add("store_errors")
                    return self._load_value(key, load)[1]
                value = self._decoded(key, datas[0])
                if value is not MISSING:
                    self._c.add("lock_waits")
                    return value
                if not locked[0]:
                    break   # the loader failed or died: compete for the lock

    def _load_locked(self, key: str, load: Callable[[], Any], token: str) -> Any:
        store = self._store
        try:
            try:   # a load may have finished between our miss and our lock
                value = self._decoded(key, store._fetch(key))
                if value is not MISSING:
                    self._c.add("lock_waits")
                    return value
            except StoreError:
                self._c.add("store_errors")
            data, value = self._load_value(key, load)
            self._put(key, data)
            return value
        finally:
            try:
                store._unlock("load", key, token)
            except StoreError:
                self._c.add("store_errors")

    def _load_many_call(self, keys: List[str]) -> Dict[str, Any]:
        """The loader over a batch: {key: value} of the keys that exist."""
        t0 = self._c.load_latency.start()
        try:
            if self._loader_many is not None:
                result = self._loader_many(list(keys))
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
                        found[k] = self._loader(k)  # type: ignore[misc]
                    except KeyError:
                        pass
        except BaseException:
            self._c.add("load_errors")
            raise
        finally:
            self._c.load_latency.stop(t0)
        self._c.add("loads", len(found))
        return found

    def _load_many(self, keys: List[str], put: bool) -> Dict[str, Any]:
        found = self._load_many_call(keys)
        out = {}
        items = []
        for k, v in found.items():
            data = self._store.encode(v)
            items.append((k, data))
            out[k] = self._roundtrip(k, data, v)
        if put and items:
            try:
                self._store._put_many(items, self._ttl_ms, self._id)
            except StoreError:
                self._c.add("store_errors")
        return out

    def _load_many_guarded(self, keys: List[str], deadline: float) -> Dict[str, Any]:
        store = self._store
        if not self._stampede:
            return self._load_many(keys, True)
        try:
            tokens = store._lock_many("load", keys, self._lock_lease)
        except StoreError:
            self._c.add("store_errors")
            return self._load_many(keys, False)
        out: Dict[str, Any] = {}
        mine = [k for k in keys if k in tokens]
        if mine:
            try:
                out.update(self._load_many(mine, True))
            finally:
                try:
                    store._unlock_many("load", tokens)
                except StoreError:
                    self._c.add("store_errors")
        waiting = [k for k in keys if k not in tokens]
        delay = 0.002
        while waiting:
            left = deadline - monotonic()
            if left <= 0:
                self._c.add("lock_timeouts", len(waiting))
                out.update(self._load_many(waiting, True))
                break
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
            try:
                datas, locked = store._fetch_locked(waiting)
            except StoreError:
                self._c.add("store_errors")
                out.update(self._load_many(waiting, False))
                break
            free = []
            still = []
            for k, data, held in zip(waiting, datas, locked):
                value = self._decoded(k, data)
                if value is not MISSING:
                    self._c.add("lock_waits")
                    out[k] = value
                elif held:
                    still.append(k)
                else:
                    free.append(k)
            if free:   # their loader failed or died: compete again
                out.update(self._load_many_guarded(free, deadline))
            waiting = still
        return out

    # ---- batches -----------------------------------------------------------

    def get_many(self, keys: Iterable[Any]) -> Dict[str, Any]:
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
            lead, follow = self._flight.claim(missing)
            if lead:
                try:
                    found = self._resolve_many(lead)
                except BaseException as exc:
                    self._flight.fail(lead, exc)
                    raise
                self._flight.finish(lead, found)
                out.update(found)
            for k, flight in follow.items():
                value = flight.wait()
                if value is not MISSING:
                    out[k] = value
        return {k: out[k] for k in ks if k in out}

    def _resolve_many(self, keys: List[str]) -> Dict[str, Any]:
        loads = self._loader is not None or self._loader_many is not None
        tickets = [self._begin(k) for k in keys]
        try:
            found, ttls, missing = self._lookup_many(keys)
            if missing and loads:
                if found is None:   # the store failed
                    found, ttls = self._load_many(missing, False), {}
                else:
                    found.update(self._load_many_guarded(missing,
                                                         monotonic() + self._lock_wait))
            elif found is None:
                found, ttls = {}, {}
        except BaseException:
            for t in tickets:
                self._end(t)
            raise
        for k, t in zip(keys, tickets):
            if k in found:
                self._fill(k, found[k], ttls.get(k), t)
            else:
                self._end(t)
        return found

    def _lookup_many(self, keys: List[str]) -> Tuple[Optional[Dict[str, Any]],
                                                     Dict[str, Any], List[str]]:
        """({key: value} found in the store (None if it failed), {key: local
        TTL}, keys missing)."""
        try:
            datas = self._store._fetch_many(keys)
        except StoreError:
            self._c.add("store_errors")
            return None, {}, list(keys)
        found = {}
        missing = []
        for k, value in zip(keys, self._store.decode_many(keys, datas)):
            if value is MISSING:
                missing.append(k)
            else:
                found[k] = value
        if found:
            self._c.add("store_hits", len(found))
        if missing:
            self._c.add("misses", len(missing))
        return found, {}, missing

    # ---- the local tier ----------------------------------------------------

    def _begin(self, key: str) -> Any:
        return None

    def _end(self, ticket: Any) -> bool:
        return True

    def _fill(self, key: str, value: Any, local_ttl: Any, ticket: Any) -> None:
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
        return _min_ttl(self._local_ttl if self._local is None else self._local.default_ttl,
                        check_ttl(ttl))

    # ---- writes (plain cache writes; write-through/behind override set) ---

    def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Put value into the store and the local tier.  A store failure
        raises StoreError (and drops the local entry)."""
        k = norm_key(key)
        data = self._store.encode(value)
        ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
        self._write(k, data, ms, self._roundtrip(k, data, value), ttl)

    def _write(self, key: str, data: bytes, ms: Optional[int], value: Any,
               ttl: Optional[float]) -> None:
        ticket = self._begin(key)
        try:
            self._store._put(key, data, ms, self._id)
        except StoreError:
            self._c.add("store_errors")
            self._end(ticket)
            if self._local is not None:
                self._local.pop(key, None)
            raise
        self._invalidate_own(key, ticket)
        self._fill(key, value, self._local_ttl_for(ttl), ticket)

    def _invalidate_own(self, key: str, ticket: Any) -> None:
        """This process changed key: fills of it in flight are stale."""

    def set_many(self, mapping: Any, ttl: Optional[float] = None) -> None:
        """Put every (key, value) into the store (one round trip) and the
        local tier."""
        if not hasattr(mapping, "items"):
            raise TypeError(f"set_many takes a mapping, got {type(mapping).__name__}")
        items = [(norm_key(k), v) for k, v in mapping.items()]
        encoded = [(k, self._store.encode(v)) for k, v in items]
        if not encoded:
            return
        ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
        tickets = [self._begin(k) for k, _ in encoded]
        try:
            self._store._put_many(encoded, ms, self._id)
        except StoreError:
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
            self._fill(k, self._roundtrip(k, data, v), local_ttl, t)

    def delete(self, key: Any) -> bool:
        """Remove key from the store and the local tier; True if the store
        had it.  A store failure raises StoreError."""
        k = norm_key(key)
        if self._local is not None:
            self._local.pop(k, None)
        try:
            found = self._store._remove(k, self._id)
        except StoreError:
            self._c.add("store_errors")
            raise
        finally:
            self._invalidate_own(k, None)
            if self._local is not None:
                self._local.pop(k, None)
        return found

    def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove keys from the store (one round trip) and the local tier."""
        ks = list(dict.fromkeys(norm_key(k) for k in keys))
        if not ks:
            return 0
        try:
            return self._store._remove_many(ks, self._id)
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

    def close(self) -> None:
        """Stop background work (idempotent).  The store stays open: it may
        be shared."""
        self._closed = True

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(store={self._store!r}, "
                f"local={'None' if self._local is None else type(self._local).__name__})")


def _never(key: Any, default: Any = None) -> Any:
    return default
