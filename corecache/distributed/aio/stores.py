# asyncio source of corecache/distributed/stores.py (generated from it by _unasync.py)
"""Stores: where the distributed patterns keep values, and the protocol the
patterns speak to them.

A store has two layers.

**The user API** (``get``, ``set``, ``delete``, ``get_many``, ``set_many``,
``delete_many``, ``get_with_ttl``, ``clear``, ``close``) takes user keys and
values.

**The store protocol** below it takes normalized ``str`` keys and serialized
``bytes``; it is all a pattern uses, and where the distributed guarantees
live.  Every method is one round trip (a batch: one per node of a cluster)
and raises :class:`StoreError` (``StoreUnavailable`` when the store cannot be
reached) on failure.  Four parts:

1. *Values.*  ``fetch``, ``fetch_many``, ``fetch_ttl``, ``fetch_many_ttl``
   read; ``put``, ``put_many``, ``remove``, ``remove_many`` are the writes
   corecache makes, and each one cancels the fills of its keys in flight
   (see 2) and publishes the keys on the invalidation channel.
2. *Fill locks and versioned fills.*  A value loaded after a miss (or
   reloaded by refresh-ahead) is stored only by the holder of the key's fill
   lock: ``lock(key, token, lease)`` takes it (idempotent: the same token
   takes it again, so a retried request cannot lock its own caller out);
   ``fill(key, data, ttl, token, expect)`` stores the value in one atomic
   step *only if* the lock is still that token's and no write came through
   corecache since it was taken (a write turns the lock into a "poisoned"
   one), and the key still holds what the filler saw (``expect``: None for
   "absent", else the SHA-1 of the bytes seen, or absent), then releases
   it.  ``unlock(key, token, failure)`` releases it without filling; with a
   failure text it leaves that text for ``lock_failure_ttl`` so that the
   processes waiting for that load raise it instead of loading again.
   ``lock_state(keys)`` is what waiters poll: each key's value and lock.
   ``renew`` extends leases; :meth:`Store.keep` does it in the background
   while a loader runs.
3. *The write-behind queue* (see write_behind.py): ``queue_push``,
   ``queue_claim``, ``queue_hold``, ``queue_ack``, ``queue_release``,
   ``queue_settle``, ``queue_records``, ``queue_count`` and
   ``durability_warning``.  Records carry a version that only grows (per
   key and across restarts of the store) and the id of the instance that
   wrote them.
4. *Invalidations*: ``subscribe(callback, heartbeat)``.

Two implementations: :class:`MemoryStore` here, inside the process, with the
same semantics, and ``RedisStore`` (``redis_store.py``) where every step of
2 and 3 is one Lua script.

Keys are ``str`` (an ``int`` is accepted and means its decimal string: 42
and "42" name the same entry).  A key that is not valid UTF-8 (a lone
surrogate) cannot be stored: reads treat it as absent, writes raise
ValueError naming it.  TTLs: ``None`` means the store's ``default_ttl``;
``math.inf`` means no expiry; otherwise seconds, kept with millisecond
precision and set atomically with the value.
"""
from __future__ import annotations

from __future__ import annotations

import abc
import heapq
import math
import threading
import time
from collections import OrderedDict
from time import monotonic
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from ...config import check_callable, check_ttl
from .._protocol import (DONE_LIST_TTL, FENCE_WINDOW_LEASES, LOCK_FAILURE_TTL, MISSING,
                         check_namespace, lease_ms, lock_failure, lock_holder, log,
                         make_record, mapping_items, norm_key, parse_done, parse_record, sha1,
                         storable, ttl_ms, unstorable, write_key)
from ..serializers import CorruptValue, resolve_serializer
from ._io import Event, Worker

__all__ = ["MemoryStore", "Store", "norm_key", "storable", "write_key", "lock_failure",
           "lock_holder", "parse_record", "make_record", "parse_done", "sha1", "lease_ms",
           "ttl_ms", "unstorable", "DONE_LIST_TTL", "FENCE_WINDOW_LEASES", "LOCK_FAILURE_TTL",
           "MISSING"]


# ---- the lease keeper --------------------------------------------------------


class LeaseKeeper:
    """Renews the fill locks this process holds while their loaders run, so
    that a load slower than its lease is not taken over while its process
    is alive (a process that dies or stops stops renewing, and its lease
    runs out).  A background worker (a daemon thread; in aio a task),
    started at the first hold, that ends when nothing has been held for a
    moment.

    I/O: ``renew(items, lease)`` is the store's; it runs on the keeper's
    worker, never on a caller's.
    """

    _LINGER = 0.25

    def __init__(self, renew: Callable[[List[Tuple[str, str]], float], Any],
                 name: str) -> None:
        self._renew = renew
        self._name = name
        self._lock = threading.Lock()
        self._changed = Event()
        self._held: Dict[Tuple[str, str], List[float]] = {}   # -> [lease, due]
        self._worker: Optional[Worker] = None
        self._closed = False

    def hold(self, key: str, token: str, lease: float) -> None:
        with self._lock:
            if self._closed:
                return
            self._held[(key, token)] = [lease, monotonic() + lease / 3]
            if self._worker is None:
                self._worker = Worker(self._run, f"lease-keeper-{self._name}")
                self._worker.start()
        self._changed.set()

    def drop(self, key: str, token: str) -> None:
        with self._lock:
            self._held.pop((key, token), None)
            empty = not self._held
        if empty:
            self._changed.set()

    async def _run(self) -> None:
        idle_since: Optional[float] = None
        while True:
            self._changed.clear()    # before looking: a later hold() wakes the wait
            batches: Dict[float, List[Tuple[str, str]]] = {}
            with self._lock:
                now = monotonic()
                wait = 0.0
                if self._closed:
                    self._worker = None
                    return
                if not self._held:
                    if idle_since is None:
                        idle_since = now
                    if now - idle_since >= self._LINGER:
                        self._worker = None
                        return
                    wait = self._LINGER
                else:
                    idle_since = None
                    due = min(d for _, d in self._held.values())
                    if due > now:
                        wait = due - now
                    else:
                        for kt, entry in self._held.items():
                            if entry[1] <= now:
                                batches.setdefault(entry[0], []).append(kt)
                                entry[1] = now + entry[0] / 3
            if not batches:
                await self._changed.wait(wait)
                continue
            for lease, items in batches.items():
                try:
                    await self._renew(items, lease)
                except Exception:   # a store failure: the lease may run out
                    pass

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            self._held.clear()
            worker = self._worker
        self._changed.set()
        if worker is not None:
            await worker.join(5.0)


# ---- Store --------------------------------------------------------------------


class Store(abc.ABC):
    """The interface of a store; see the module docstring."""

    def __init__(self, *, namespace: str = "corecache", serializer: Any = "json",
                 secret_key: Any = None, default_ttl: Optional[float] = None) -> None:
        self._namespace = check_namespace(namespace)
        self._serializer = resolve_serializer(serializer, secret_key)
        self._dumps = self._serializer.dumps
        self._loads = self._serializer.loads
        self._binds = bool(getattr(self._serializer, "binds", False))
        ttl = check_ttl(default_ttl, "default_ttl")
        self._default_ttl = None if ttl == math.inf else ttl
        self._corrupt = 0
        self._corrupt_lock = threading.Lock()
        self._durability_asked = False
        self._keeper = LeaseKeeper(self.renew, self._namespace)

    # ---- configuration -----------------------------------------------------

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def serializer(self) -> Any:
        return self._serializer

    @property
    def default_ttl(self) -> Optional[float]:
        return self._default_ttl

    @property
    def corrupt(self) -> int:
        """How many stored values the serializer refused so far."""
        return self._corrupt

    def resolve_ttl(self, ttl: Any, name: str = "ttl") -> Optional[int]:
        """A ``ttl=`` argument as milliseconds (None: no expiry)."""
        if ttl is None:
            return ttl_ms(self._default_ttl)
        return ttl_ms(check_ttl(ttl, name))

    # ---- values ------------------------------------------------------------

    def encode(self, value: Any, key: str = "", ttl: Optional[int] = None) -> bytes:
        """The serialized value, to be stored under key for ttl ms (a
        binding serializer signs both); TypeError if the serializer cannot
        take it."""
        if self._binds:
            expires = 0 if ttl is None else int(time.time() * 1000) + ttl
            data = self._dumps(value, (self._namespace, key), expires)
        else:
            data = self._dumps(value)
        if not isinstance(data, bytes):
            if isinstance(data, (bytearray, memoryview)):
                return bytes(data)
            if isinstance(data, str):
                return data.encode("utf-8")
            raise TypeError(f"serializer {self._serializer!r} returned "
                            f"{type(data).__name__}, not bytes")
        return data

    def decode(self, key: str, data: bytes, check_expiry: bool = True) -> Any:
        """The value of bytes stored under key, or MISSING (logged) if the
        serializer refuses them."""
        try:
            if self._binds:
                return self._loads(data, (self._namespace, key), check_expiry)
            return self._loads(data)
        except Exception as exc:
            with self._corrupt_lock:
                self._corrupt += 1
            reason = exc if isinstance(exc, CorruptValue) else repr(exc)
            log.warning("corecache: discarding the stored value of key %r in namespace "
                        "%r: %s", key, self._namespace, reason)
            return MISSING

    def decode_many(self, keys: List[str], datas: List[Optional[bytes]]) -> List[Any]:
        """decode() of each present value (MISSING for None), each on its
        own: one value's bytes never reach another's."""
        decode = self.decode
        return [MISSING if d is None else decode(k, d) for k, d in zip(keys, datas)]

    # ---- public API --------------------------------------------------------

    async def get(self, key: Any, default: Any = None) -> Any:
        """The value of key, or ``default`` if absent (or refused by the serializer)."""
        k = norm_key(key)
        if not storable(k):
            return default
        data = await self.fetch(k)
        if data is None:
            return default
        value = self.decode(k, data)
        return default if value is MISSING else value

    async def get_with_ttl(self, key: Any, default: Any = None) -> Tuple[Any, Optional[float]]:
        """(value, seconds left or None for no expiry); (default, None) if absent."""
        k = norm_key(key)
        if not storable(k):
            return default, None
        data, left = await self.fetch_ttl(k)
        if data is None:
            return default, None
        value = self.decode(k, data)
        return (default, None) if value is MISSING else (value, left)

    async def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Store value under key (TTL set atomically with it)."""
        k = write_key(key)
        ms = self.resolve_ttl(ttl)
        await self.put(k, self.encode(value, k, ms), ms, None)

    async def delete(self, key: Any) -> bool:
        """Remove key; True if it was there."""
        return await self.remove(write_key(key), None)

    async def get_many(self, keys: Iterable[Any]) -> Dict[str, Any]:
        """{key: value} for the keys that are present (one round trip)."""
        ks = [k for k in dict.fromkeys(norm_key(k) for k in keys) if storable(k)]
        out: Dict[str, Any] = {}
        if not ks:
            return out
        for k, value in zip(ks, self.decode_many(ks, await self.fetch_many(ks))):
            if value is not MISSING:
                out[k] = value
        return out

    async def set_many(self, mapping: Mapping[Any, Any], ttl: Optional[float] = None) -> None:
        """Store every (key, value) of mapping (one round trip)."""
        items = mapping_items(mapping)
        ms = self.resolve_ttl(ttl)
        encoded = []
        for key, value in items:
            k = write_key(key)
            encoded.append((k, self.encode(value, k, ms)))
        if encoded:
            await self.put_many(encoded, ms, None)

    async def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove keys; returns how many were there (one round trip)."""
        ks = list(dict.fromkeys(write_key(k) for k in keys))
        return await self.remove_many(ks, None) if ks else 0

    @abc.abstractmethod
    async def clear(self) -> None:
        """Remove every entry of this namespace (not its pending writes)."""

    async def aclose(self) -> None:
        """Release what the store holds (the lease keeper, a client it built
        itself)."""
        await self._keeper.aclose()

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ---- protocol 1: values ------------------------------------------------

    @abc.abstractmethod
    async def fetch(self, key: str) -> Optional[bytes]:
        """The bytes stored under key, or None."""

    @abc.abstractmethod
    async def fetch_many(self, keys: List[str]) -> List[Optional[bytes]]:
        """fetch() of each key."""

    @abc.abstractmethod
    async def fetch_ttl(self, key: str) -> Tuple[Optional[bytes], Optional[float]]:
        """(bytes or None, seconds left or None for no expiry)."""

    @abc.abstractmethod
    async def fetch_many_ttl(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                        List[Optional[float]]]:
        """fetch_ttl() of each key, as two lists."""

    @abc.abstractmethod
    async def put(self, key: str, data: bytes, ttl: Optional[int], origin: Optional[str]) -> None:
        """Store data (ttl in ms, None: none), poison the key's fill lock,
        publish the key as changed by origin."""

    @abc.abstractmethod
    async def put_many(self, items: List[Tuple[str, bytes]], ttl: Optional[int],
                 origin: Optional[str]) -> None:
        """put() of every (key, data)."""

    @abc.abstractmethod
    async def remove(self, key: str, origin: Optional[str]) -> bool:
        """Delete key (poisoning its fill lock, publishing it); True if it
        was there."""

    @abc.abstractmethod
    async def remove_many(self, keys: List[str], origin: Optional[str]) -> int:
        """remove() of every key; how many were there."""

    # ---- protocol 2: fill locks ----------------------------------------------

    @abc.abstractmethod
    async def lock(self, key: str, token: str, lease: float) -> bool:
        """Take key's fill lock for lease seconds; True if it is token's now
        (also when token held it already: a retried call gets its lock)."""

    @abc.abstractmethod
    async def lock_many(self, keys: List[str], token: str, lease: float) -> List[str]:
        """lock() of each key with one token; the keys locked."""

    @abc.abstractmethod
    async def renew(self, items: List[Tuple[str, str]], lease: float) -> None:
        """Extend the leases of the (key, token) locks still held by token."""

    @abc.abstractmethod
    async def lock_state(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                    List[Optional[str]]]:
        """Each key's stored bytes and its fill lock's state (None: no lock;
        see lock_holder and lock_failure)."""

    @abc.abstractmethod
    async def fill(self, key: str, data: bytes, ttl: Optional[int], token: str,
             origin: Optional[str], expect: Optional[str] = None) -> bool:
        """Store a loaded value if, in one atomic step, the key's fill lock
        is still token's (no corecache write poisoned it, its lease did not
        run out) and the key holds what the filler saw (expect None: it is
        absent; else the SHA-1 of the bytes seen, or absent).  Releases the
        lock either way if it is token's.  True if stored."""

    @abc.abstractmethod
    async def fill_many(self, items: List[Tuple[str, bytes, Optional[str]]], ttl: Optional[int],
                  token: str, origin: Optional[str]) -> List[str]:
        """fill() of every (key, data, expect); the keys stored."""

    @abc.abstractmethod
    async def unlock(self, key: str, token: str, failure: Optional[str] = None) -> None:
        """Release key's fill lock if token holds it; with failure, leave
        that text to the processes waiting for this load."""

    @abc.abstractmethod
    async def unlock_many(self, keys: List[str], token: str) -> None:
        """unlock() of each key, without failure."""

    def keep(self, key: str, token: str, lease: float) -> None:
        """Renew this lock in the background until drop()."""
        self._keeper.hold(key, token, lease)

    def drop(self, key: str, token: str) -> None:
        self._keeper.drop(key, token)

    # ---- protocol 3: the write-behind queue ----------------------------------

    @abc.abstractmethod
    async def queue_push(self, key: str, body: bytes, ttl: Optional[int], max_pending: int,
                   origin: str) -> Tuple[Optional[bytes], int, bool]:
        """Queue body (b"v" + data or b"d") for key as origin's latest write,
        store (or delete) the cached value with it, publish the key.
        Returns (the record, or None if refused at max_pending; keys
        pending; the key was not pending before).  A record replaced here
        that another instance queued goes to that instance's done list."""

    @abc.abstractmethod
    async def queue_claim(self, consumer: str, n: int, lease: float
                    ) -> Tuple[List[Tuple[str, bytes]], int, int, List[Tuple[int, str]]]:
        """Return claims whose lease ran out to the front of the queue
        (remembering, for FENCE_WINDOW_LEASES leases, whom they were taken
        from), then claim up to n keys for consumer.  Returns (claimed
        (key, record)s, keys pending, claims taken back, consumer's done
        list, emptied: (version, key)s of its records that others settled)."""

    @abc.abstractmethod
    async def queue_hold(self, consumer: str, keys: List[str], lease: float,
                   abandon: bool = False) -> List[str]:
        """Renew consumer's claims of keys; the keys still held.  abandon:
        a key no longer held is one this consumer will not write, so its
        takeover needs no repair."""

    @abc.abstractmethod
    async def queue_ack(self, consumer: str, items: List[Tuple[str, bytes]]
                  ) -> Tuple[Dict[str, str], int]:
        """Settle written (key, record)s.  Per key: "done" (it left the
        queue: another instance's record goes to its done list), "newer" (a
        newer record is queued), "late" (consumer's claim was taken over
        before this acknowledgement: the latest record of the key is queued
        again, stamped with a new version, so that it is written after this
        late write), "gone" (nothing to do).  Returns (statuses, keys pending)."""

    @abc.abstractmethod
    async def queue_release(self, consumer: str, keys: List[str], final: bool = False) -> None:
        """Return consumer's claims of keys to the front of the queue;
        final: consumer is going away (its done list goes too)."""

    @abc.abstractmethod
    async def queue_settle(self, origin: str, keys: List[str]
                     ) -> Tuple[List[Tuple[int, str]], List[Optional[bytes]]]:
        """In one atomic step: origin's done list (emptied) and the pending
        records of keys."""

    @abc.abstractmethod
    async def queue_records(self, keys: List[str]) -> List[Optional[bytes]]:
        """The pending records of keys."""

    @abc.abstractmethod
    async def queue_count(self) -> int:
        """Keys pending."""

    async def durability_warning(self) -> Optional[str]:
        """Why the write-behind queue would not survive a restart of the
        store, or None; asked of the store once (later calls: None), so that
        the instances on one store warn once between them."""
        with self._corrupt_lock:
            if self._durability_asked:
                return None
            self._durability_asked = True
        return await self._durability()

    async def _durability(self) -> Optional[str]:
        return None

    # ---- protocol 4: invalidations -------------------------------------------

    @abc.abstractmethod
    def subscribe(self, callback: Callable[..., None], *, heartbeat: float = 1.0) -> Any:
        """Deliver invalidations to callback(event, origin, keys) with event
        "up", "down", "keys" (keys None: all) or "tracked" (keys the server
        saw changed by anyone, origin None).  Returns a handle with
        ``aclose()``, ``up`` (the stream is up) and ``ensure()``, which starts
        its listener if that waited for an event loop (aio)."""


# ---- MemoryStore ------------------------------------------------------------


class _Subscription:
    def __init__(self, store: "MemoryStore", callback: Callable[..., None]) -> None:
        self._store = store
        self.callback = callback
        self.up = True

    def ensure(self) -> None:
        """Nothing to start: messages are delivered by the writers."""

    async def aclose(self) -> None:
        self._store._unsubscribe(self)


class MemoryStore(Store):
    """A store inside this process, with the interface and semantics of
    ``RedisStore``: serialized values, TTLs, fill locks with leases and
    versioned fills, a write-behind queue and invalidation messages
    (delivered synchronously to the subscribers in this process).  Nothing
    survives the process, so write-behind durability ends with it.

    :param namespace: a label (stores do not share entries in memory).
    :param serializer: "json" (default), "pickle" (with ``secret_key``),
        "raw", or an object with ``dumps``/``loads``.
    :param secret_key: the HMAC key of the pickle serializer.
    :param default_ttl: seconds an entry lives when ``set`` gives no TTL.
    :param clock: a zero-argument callable of monotonic seconds (tests).
    """

    def __init__(self, *, namespace: str = "corecache", serializer: Any = "json",
                 secret_key: Any = None, default_ttl: Optional[float] = None,
                 clock: Optional[Callable[[], float]] = None) -> None:
        super().__init__(namespace=namespace, serializer=serializer, secret_key=secret_key,
                         default_ttl=default_ttl)
        check_callable(clock, "clock")
        self._clock = clock or monotonic
        self._mutex = threading.RLock()
        self._data: Dict[str, Tuple[bytes, float]] = {}
        self._expiry: List[Tuple[float, str]] = []   # (deadline, key), may be stale
        self._locks: Dict[str, Tuple[str, float]] = {}   # key -> (state, deadline)
        self._pending: Dict[str, bytes] = {}
        self._queue: "OrderedDict[str, None]" = OrderedDict()
        self._claims: Dict[str, Tuple[str, float]] = {}   # key -> (consumer, deadline)
        self._kept: Dict[str, Tuple[str, Optional[bytes], float]] = {}  # see queue_claim
        self._done: Dict[str, List[Tuple[int, str]]] = {}
        self._version = 0
        self._subs: List[_Subscription] = []

    def __repr__(self) -> str:
        return f"MemoryStore(namespace={self._namespace!r}, size={len(self._data)})"

    # ---- storage -----------------------------------------------------------

    def _live(self, key: str, now: float) -> Optional[Tuple[bytes, float]]:
        entry = self._data.get(key)
        if entry is not None and entry[1] <= now:
            del self._data[key]
            return None
        return entry

    def _store(self, key: str, data: bytes, ttl: Optional[int], now: float) -> None:
        deadline = math.inf if ttl is None else now + ttl / 1000.0
        self._data[key] = (data, deadline)
        if deadline != math.inf:
            heapq.heappush(self._expiry, (deadline, key))
        # drop expired entries now and then, so that unread ones do not pile up
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, k = heapq.heappop(expiry)
            entry = self._data.get(k)
            if entry is not None and entry[1] <= now:
                del self._data[k]

    def _lock_of(self, key: str, now: float) -> Optional[str]:
        held = self._locks.get(key)
        if held is None:
            return None
        if held[1] <= now:
            del self._locks[key]
            return None
        return held[0]

    def _poison(self, key: str, now: float) -> None:
        held = self._locks.get(key)
        if held is not None and held[1] > now:
            self._locks[key] = ("p", held[1])

    def _notify(self, origin: Optional[str], keys: Optional[List[str]]) -> None:
        with self._mutex:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.callback("keys", origin, keys)
            except Exception:  # a subscriber's failure is its own
                log.exception("corecache: invalidation callback failed")

    async def fetch(self, key: str) -> Optional[bytes]:
        with self._mutex:
            entry = self._live(key, self._clock())
        return None if entry is None else entry[0]

    async def fetch_many(self, keys: List[str]) -> List[Optional[bytes]]:
        now = self._clock()
        with self._mutex:
            entries = [self._live(k, now) for k in keys]
        return [None if e is None else e[0] for e in entries]

    async def fetch_ttl(self, key: str) -> Tuple[Optional[bytes], Optional[float]]:
        datas, lefts = await self.fetch_many_ttl([key])
        return datas[0], lefts[0]

    async def fetch_many_ttl(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                        List[Optional[float]]]:
        now = self._clock()
        datas: List[Optional[bytes]] = []
        lefts: List[Optional[float]] = []
        with self._mutex:
            for k in keys:
                entry = self._live(k, now)
                datas.append(None if entry is None else entry[0])
                lefts.append(None if entry is None or entry[1] == math.inf
                             else entry[1] - now)
        return datas, lefts

    async def put(self, key: str, data: bytes, ttl: Optional[int], origin: Optional[str]) -> None:
        now = self._clock()
        with self._mutex:
            self._poison(key, now)
            self._store(key, data, ttl, now)
        self._notify(origin, [key])

    async def put_many(self, items: List[Tuple[str, bytes]], ttl: Optional[int],
                 origin: Optional[str]) -> None:
        now = self._clock()
        with self._mutex:
            for k, data in items:
                self._poison(k, now)
                self._store(k, data, ttl, now)
        self._notify(origin, [k for k, _ in items])

    async def remove(self, key: str, origin: Optional[str]) -> bool:
        now = self._clock()
        with self._mutex:
            self._poison(key, now)
            found = self._live(key, now) is not None
            self._data.pop(key, None)
        self._notify(origin, [key])
        return found

    async def remove_many(self, keys: List[str], origin: Optional[str]) -> int:
        now = self._clock()
        with self._mutex:
            n = 0
            for k in keys:
                self._poison(k, now)
                if self._live(k, now) is not None:
                    n += 1
                    del self._data[k]
        self._notify(origin, keys)
        return n

    async def clear(self) -> None:
        now = self._clock()
        with self._mutex:
            for k in self._data:
                self._poison(k, now)
            self._data.clear()
            self._expiry.clear()
        self._notify(None, None)

    def __len__(self) -> int:
        now = self._clock()
        with self._mutex:
            return sum(1 for _, d in self._data.values() if d > now)

    # ---- fill locks --------------------------------------------------------

    async def lock(self, key: str, token: str, lease: float) -> bool:
        now = self._clock()
        with self._mutex:
            holder = lock_holder(self._lock_of(key, now))
            if holder is not None and holder != token:
                return False
            self._locks[key] = ("h:" + token, now + lease)
        return True

    async def lock_many(self, keys: List[str], token: str, lease: float) -> List[str]:
        return [k for k in keys if await self.lock(k, token, lease)]

    async def renew(self, items: List[Tuple[str, str]], lease: float) -> None:
        now = self._clock()
        with self._mutex:
            for k, token in items:
                held = self._locks.get(k)
                if held is not None and held[1] > now and held[0] == "h:" + token:
                    self._locks[k] = (held[0], now + lease)

    async def lock_state(self, keys: List[str]) -> Tuple[List[Optional[bytes]],
                                                    List[Optional[str]]]:
        now = self._clock()
        with self._mutex:
            entries = [self._live(k, now) for k in keys]
            states = [self._lock_of(k, now) for k in keys]
        return [None if e is None else e[0] for e in entries], states

    def _fill(self, key: str, data: bytes, ttl: Optional[int], token: str,
              expect: Optional[str], now: float) -> bool:
        if self._lock_of(key, now) != "h:" + token:
            return False
        del self._locks[key]
        entry = self._live(key, now)
        if entry is not None and (expect is None or sha1(entry[0]) != expect):
            return False
        self._store(key, data, ttl, now)
        return True

    async def fill(self, key: str, data: bytes, ttl: Optional[int], token: str,
             origin: Optional[str], expect: Optional[str] = None) -> bool:
        now = self._clock()
        with self._mutex:
            done = self._fill(key, data, ttl, token, expect, now)
        if done:
            self._notify(origin, [key])
        return done

    async def fill_many(self, items: List[Tuple[str, bytes, Optional[str]]], ttl: Optional[int],
                  token: str, origin: Optional[str]) -> List[str]:
        now = self._clock()
        with self._mutex:
            stored = [k for k, data, expect in items
                      if self._fill(k, data, ttl, token, expect, now)]
        if stored:
            self._notify(origin, stored)
        return stored

    async def unlock(self, key: str, token: str, failure: Optional[str] = None) -> None:
        now = self._clock()
        with self._mutex:
            if self._lock_of(key, now) == "h:" + token:
                if failure is None:
                    del self._locks[key]
                else:
                    self._locks[key] = (f"f:{token}:{failure}", now + LOCK_FAILURE_TTL)

    async def unlock_many(self, keys: List[str], token: str) -> None:
        for k in keys:
            await self.unlock(k, token)

    # ---- write-behind queue ------------------------------------------------

    def _next_version(self) -> int:
        self._version = max(self._version + 1, time.time_ns() // 1000)
        return self._version

    def _push_done(self, record: bytes, key: str, by: str) -> None:
        version, origin, _ = parse_record(record)
        if origin and origin != by:
            self._done.setdefault(origin, []).append((version, key))

    async def queue_push(self, key: str, body: bytes, ttl: Optional[int], max_pending: int,
                   origin: str) -> Tuple[Optional[bytes], int, bool]:
        now = self._clock()
        with self._mutex:
            old = self._pending.get(key)
            new = old is None
            if new and max_pending and len(self._pending) >= max_pending:
                return None, len(self._pending), new
            record = make_record(self._next_version(), origin, body)
            self._pending[key] = record
            if old is not None:
                self._push_done(old, key, origin)
            if new and key not in self._claims:
                self._queue.setdefault(key, None)
            self._poison(key, now)
            if body[:1] == b"v":
                self._store(key, body[1:], ttl, now)
            else:
                self._data.pop(key, None)
            n = len(self._pending)
        self._notify(origin, [key])
        return record, n, new

    def _reclaim(self, now: float, lease: float) -> int:
        expired = [k for k, (_, d) in self._claims.items() if d <= now]
        for k in reversed(expired):
            consumer, _ = self._claims.pop(k)
            # remember whom it was taken from: if that flusher was only
            # stalled, its late write is repaired (queue_ack)
            self._kept[k] = (consumer, None, now + FENCE_WINDOW_LEASES * lease)
            if k in self._pending:
                self._queue[k] = None
                self._queue.move_to_end(k, last=False)
        for k in [k for k, (_, _, until) in self._kept.items() if until <= now]:
            del self._kept[k]
        return len(expired)

    async def queue_claim(self, consumer: str, n: int, lease: float
                    ) -> Tuple[List[Tuple[str, bytes]], int, int, List[Tuple[int, str]]]:
        now = self._clock()
        with self._mutex:
            reclaimed = self._reclaim(now, lease)
            out: List[Tuple[str, bytes]] = []
            while self._queue and len(out) < n:
                k, _ = self._queue.popitem(last=False)
                record = self._pending.get(k)
                if record is None:
                    continue
                self._claims[k] = (consumer, now + lease)
                out.append((k, record))
            done = self._done.pop(consumer, [])
            return out, len(self._pending), reclaimed, done

    async def queue_hold(self, consumer: str, keys: List[str], lease: float,
                   abandon: bool = False) -> List[str]:
        now = self._clock()
        held = []
        with self._mutex:
            for k in keys:
                claim = self._claims.get(k)
                if claim is not None and claim[0] == consumer:   # not taken over yet
                    self._claims[k] = (consumer, now + lease)
                    held.append(k)
                elif abandon:
                    kept = self._kept.get(k)
                    if kept is not None and kept[0] == consumer:
                        del self._kept[k]   # it will not write: nothing to repair
        return held

    async def queue_ack(self, consumer: str, items: List[Tuple[str, bytes]]
                  ) -> Tuple[Dict[str, str], int]:
        statuses: Dict[str, str] = {}
        with self._mutex:
            for k, record in items:
                claim = self._claims.get(k)
                current = self._pending.get(k)
                if claim is not None and claim[0] == consumer:
                    del self._claims[k]
                    if current == record:
                        del self._pending[k]
                        self._push_done(record, k, consumer)
                        kept = self._kept.get(k)
                        if kept is not None:
                            self._kept[k] = (kept[0], record, kept[2])
                        statuses[k] = "done"
                    elif current is not None:
                        self._queue.setdefault(k, None)
                        statuses[k] = "newer"
                    else:
                        statuses[k] = "gone"
                    continue
                kept = self._kept.get(k)
                if kept is not None and kept[0] == consumer:
                    # this write landed after the takeover's: write the
                    # latest again, after it
                    del self._kept[k]
                    latest = current if current is not None else kept[1]
                    if latest is not None:
                        _, origin, body = parse_record(latest)
                        self._pending[k] = make_record(self._next_version(), origin, body)
                        if k not in self._claims:
                            self._queue.setdefault(k, None)
                    statuses[k] = "late"
                elif current == record:
                    del self._pending[k]
                    self._push_done(record, k, consumer)
                    statuses[k] = "done"
                else:
                    statuses[k] = "gone"
            return statuses, len(self._pending)

    async def queue_release(self, consumer: str, keys: List[str], final: bool = False) -> None:
        with self._mutex:
            for k in reversed(keys):
                claim = self._claims.get(k)
                if claim is not None and claim[0] == consumer:
                    del self._claims[k]
                    if k in self._pending:
                        self._queue[k] = None
                        self._queue.move_to_end(k, last=False)
            if final:
                self._done.pop(consumer, None)

    async def queue_settle(self, origin: str, keys: List[str]
                     ) -> Tuple[List[Tuple[int, str]], List[Optional[bytes]]]:
        with self._mutex:
            return self._done.pop(origin, []), [self._pending.get(k) for k in keys]

    async def queue_records(self, keys: List[str]) -> List[Optional[bytes]]:
        with self._mutex:
            return [self._pending.get(k) for k in keys]

    async def queue_count(self) -> int:
        with self._mutex:
            return len(self._pending)

    def lose_queue(self) -> None:
        """Forget the queue, as a store restarted without persistence would
        (tests)."""
        with self._mutex:
            self._pending.clear()
            self._queue.clear()
            self._claims.clear()
            self._kept.clear()
            self._done.clear()

    # ---- invalidation ------------------------------------------------------

    def subscribe(self, callback: Callable[..., None], *, heartbeat: float = 1.0) -> Any:
        sub = _Subscription(self, callback)
        with self._mutex:
            self._subs.append(sub)
        callback("up", None, None)
        return sub

    def _unsubscribe(self, sub: _Subscription) -> None:
        with self._mutex:
            if sub in self._subs:
                self._subs.remove(sub)
